"""A constant-velocity Kalman filter on box centre, aspect ratio and height, for many boxes
at once (arrays, no per-box Python loop).

State (8,): ``cx, cy, a, h`` (centre in pixels, aspect ratio w/h, height in pixels) and their
velocities in units per frame; measurement (4,): ``cx, cy, a, h``. Noise scales with the box
height (as in SORT and ByteTrack), so near and far objects are followed alike.
"""

from __future__ import annotations

import numpy as np

_POS, _VEL = 1 / 20, 1 / 160  # noise per pixel of box height, position and velocity


def xyah(xyxy: np.ndarray) -> np.ndarray:
    """float (N, 4) xyxy boxes -> (N, 4) ``cx, cy, a, h``."""
    xyxy = np.asarray(xyxy, np.float64)
    w = xyxy[:, 2] - xyxy[:, 0]
    h = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1e-3)
    return np.stack([xyxy[:, 0] + w / 2, xyxy[:, 1] + h / 2, w / h, h], 1)


def xyxy(state: np.ndarray) -> np.ndarray:
    """(N, >=4) ``cx, cy, a, h, ...`` -> float (N, 4) xyxy boxes."""
    h = state[:, 3]
    w = state[:, 2] * h
    return np.stack([state[:, 0] - w / 2, state[:, 1] - h / 2,
                     state[:, 0] + w / 2, state[:, 1] + h / 2], 1)


def _diag(std: np.ndarray) -> np.ndarray:
    """(N, k) standard deviations -> (N, k, k) diagonal covariances."""
    out = np.zeros(std.shape + (std.shape[1],))
    idx = np.arange(std.shape[1])
    out[:, idx, idx] = std**2
    return out


def _std(h: np.ndarray, weights: tuple[float, float, float, float]) -> np.ndarray:
    """(N, 4) standard deviations: ``weights`` times the height, the aspect's as given."""
    std = np.outer(h, weights)
    std[:, 2] = weights[2]
    return std


def initiate(measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New tracks from (N, 4) ``cx, cy, a, h``: mean (N, 8) at rest, covariance (N, 8, 8)."""
    h = measurements[:, 3]
    mean = np.concatenate([measurements, np.zeros_like(measurements)], 1)
    std = np.concatenate([_std(h, (2 * _POS, 2 * _POS, 1e-2, 2 * _POS)),
                          _std(h, (10 * _VEL, 10 * _VEL, 1e-5, 10 * _VEL))], 1)
    return mean, _diag(std)


def predict(mean: np.ndarray, cov: np.ndarray,
            frames: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``frames`` frames ahead (1 or more): (N, 8) means and (N, 8, 8) covariances.

    The same as ``frames`` one-frame steps with the process noise of the current box height:
    a gap of k frames moves a box by k times its velocity and adds k frames' uncertainty.
    """
    n = float(frames)
    h = mean[:, 3]
    qp = _std(h, (_POS, _POS, 1e-2, _POS)) ** 2  # (N, 4) noise per frame: position,
    qv = _std(h, (_VEL, _VEL, 1e-5, _VEL)) ** 2  # velocity
    # sum over the k steps of F^i Q F^i^T, F^i moving position by i times velocity
    q = np.zeros(cov.shape)
    idx = np.arange(4)
    q[:, idx, idx] = n * qp + (n - 1) * n * (2 * n - 1) / 6 * qv
    q[:, idx, idx + 4] = q[:, idx + 4, idx] = (n - 1) * n / 2 * qv
    q[:, idx + 4, idx + 4] = n * qv
    f = np.eye(8)
    f[:4, 4:] = n * np.eye(4)
    return mean @ f.T, f @ cov @ f.T + q


def update(mean: np.ndarray, cov: np.ndarray,
           measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct (N, 8) means and (N, 8, 8) covariances with (N, 4) ``cx, cy, a, h``."""
    r = _diag(_std(mean[:, 3], (_POS, _POS, 1e-1, _POS)))
    s = cov[:, :4, :4] + r  # innovation covariance, (N, 4, 4)
    gain = np.linalg.solve(s, cov[:, :4, :]).transpose(0, 2, 1)  # P H^T S^-1, (N, 8, 4)
    innovation = measurements - mean[:, :4]
    mean = mean + (gain @ innovation[:, :, None])[:, :, 0]
    cov = cov - gain @ s @ gain.transpose(0, 2, 1)
    return mean, cov


def warp(mean: np.ndarray, cov: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move (N, 8) means and (N, 8, 8) covariances by the camera's motion: ``affine`` (2, 3)
    maps the previous frame's pixels to this frame's (a rotation and uniform scale plus a
    shift). Centres and their velocities turn and scale, heights scale, aspects stay."""
    rot = affine[:, :2]
    scale = float(np.sqrt(abs(np.linalg.det(rot))))
    t = np.zeros((8, 8))
    t[0:2, 0:2] = t[4:6, 4:6] = rot
    t[2, 2] = t[6, 6] = 1.0
    t[3, 3] = t[7, 7] = scale
    mean = mean @ t.T
    mean[:, :2] += affine[:, 2]
    return mean, t @ cov @ t.T
