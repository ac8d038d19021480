"""``drivevision eval`` of a recording served at a URL that holds a password and a token:
scored, and the table, the log and the report name it masked."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from drivevision.cli import main
from drivevision.synthetic import write_eval_clip

WEIGHTS = str(Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request lines in the test output
        pass


def test_eval_of_a_credentialed_url_names_it_masked_in_table_log_and_report(tmp_path, capsys):
    write_eval_clip(tmp_path / "clip.mp4", tmp_path / "gt.jsonl", seeds=(101,),
                    frames_per_seed=3)
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(QuietHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        code = main(["eval", "--gt", str(tmp_path / "gt.jsonl"),
                     f"http://admin:s3cret@127.0.0.1:{port}/clip.mp4?token=t0ken",
                     "--weights", WEIGHTS, "--device", "cpu", "--warmup", "0",
                     "--report", str(tmp_path / "report")])
    finally:
        server.shutdown()
        server.server_close()
    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith(f"http://admin:***@127.0.0.1:{port}/clip.mp4?token=*** against")
    report = [p for p in (tmp_path / "report").rglob("*") if p.is_file()]
    assert report and not [p for p in report if b"s3cret" in p.read_bytes()
                           or b"t0ken" in p.read_bytes()]
    assert "s3cret" not in out + err and "t0ken" not in out + err
