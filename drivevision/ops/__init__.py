"""torchvision's operations between and after the dense pieces, made fast and (on CUDA) in
fixed shapes, so that a CUDA run never waits for the GPU before the detections' copy to the
host: box decoding and clipping (``boxes``), multi-scale RoIAlign as a gather
(``roi_align``), greedy NMS over fixed-size groups (``nms``, its GPU kernel in
``nms_kernel``), the detections of the box head (``postprocess``), the stage clock that
times a call (``clock``), and the frames every caller may give, checked (``frames``)."""
