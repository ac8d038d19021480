"""torchvision's operations between and after the dense pieces, in fixed shapes, so that a
CUDA run never waits for the GPU before the detections' copy to the host: box decoding and
clipping (``boxes``), greedy NMS over fixed-size groups (``nms``, its GPU kernel in
``nms_kernel``) and the detections of the box head (``postprocess``)."""
