"""LVSA's frame sets, re-typed from JiusiServe/LongVideoSparseAttention at
c72a36baf742281876245034f0d45301d114daa9, not from sieve: the one port that
tests/ref/check_masks.py and python/tests/test_ref_lvsa.py both check
sieve's lvsa against.
  lvsa/sparse_attention.py  adaptive_window_bounds, expanded_window_bounds,
                            get_window_bounds, compute_auto_kfi,
                            compute_global_indices (l. 40-216)
  lvsa/parallel.py          install_lvsa_processors (l. 95-131): the window
                            shrink, auto spacing whenever it rotates
  lvsa/lvsa_processor.py    __init__ (offset 0, l. 138-154), set_step
                            (317-331)
  examples/wan_generate.py  set_step from the step-end callback
                            (l. 408-428, 475)
Plain python3: no torch, so the CTest reference runs without it.
"""
import math


def adaptive_window_bounds(f, W, T):
    win_start = max(0, min(f - W, T - 1 - 2 * W))
    win_end = min(T - 1, max(f + W, 2 * W))
    return win_start, win_end


def expanded_window_bounds(f, W, T, global_set, global_count):
    win_lo, win_hi = adaptive_window_bounds(f, W, T)
    target = min(2 * W + 1, T - global_count)
    non_global = sum(1 for wf in range(win_lo, win_hi + 1) if wf not in global_set)
    while non_global < target:
        expanded = False
        if win_lo > 0:
            win_lo -= 1
            if win_lo not in global_set:
                non_global += 1
            expanded = True
        if non_global >= target:
            break
        if win_hi < T - 1:
            win_hi += 1
            if win_hi not in global_set:
                non_global += 1
            expanded = True
        if not expanded:
            break
    return win_lo, win_hi


def get_window_bounds(f, W, T, expand, global_set, global_count):
    if W == 0:
        return (f, f - 1)
    if expand:
        return expanded_window_bounds(f, W, T, global_set, global_count)
    return adaptive_window_bounds(f, W, T)


def compute_auto_kfi(total_frames, window_size, n_first_frames, reference_frames=21, sparsity_scale=1.0):
    scaled_ref = max(n_first_frames + 1, int(reference_frames * sparsity_scale))
    if total_frames <= scaled_ref:
        return 1
    target_attended = min(scaled_ref, total_frames)
    target_globals = max(n_first_frames, target_attended - min(2 * window_size + 1, total_frames))
    strict_kfi = 1
    for kfi in range(total_frames, 0, -1):
        indices = set(range(min(n_first_frames, total_frames)))
        indices.update(range(0, total_frames, kfi))
        if len(indices) >= target_globals:
            strict_kfi = kfi
            break
    mandatory = 2 * window_size + n_first_frames
    max_frames_total = max(total_frames - mandatory, scaled_ref - mandatory)
    max_frames_ref = max(scaled_ref - mandatory, 1)
    fallback_kfi = math.ceil(max_frames_total / max_frames_ref)
    return max(strict_kfi, fallback_kfi)


def compute_global_indices(total_frames, n_first_frames, key_frame_interval, offset=0):
    global_set = set(range(min(n_first_frames, total_frames)))
    if key_frame_interval is not None and key_frame_interval > 0:
        n_keyframes = math.ceil(total_frames / key_frame_interval)
        for i in range(n_keyframes):
            global_set.add((offset + i * key_frame_interval) % total_frames)
    return sorted(global_set)


class Processor:
    """DistributedLVSAProcessor's frame sets on one rank (world 1: no
    boundary guards), as install_lvsa_processors configures it. Sizes are in
    latent frames (the CLI's video frames // 4)."""

    def __init__(self, T, window_size=3, n_first_frames=1, key_frame_interval=4, ref_lat_frames=None,
                 rotate_keyframes=False, auto_keyframes=False, sparsity_scale=1.0, expand_window=True,
                 shrink=True):
        # install_lvsa_processors: scale down a window that covers everything
        effective_window = window_size * 2 + 1 + n_first_frames
        if shrink and ref_lat_frames and effective_window >= T and T > ref_lat_frames:
            window_size = max(ref_lat_frames // 2, 1)
            n_first_frames = max(ref_lat_frames // 4, 1)
        if auto_keyframes or rotate_keyframes:
            key_frame_interval = compute_auto_kfi(T, window_size, n_first_frames,
                                                  reference_frames=ref_lat_frames,
                                                  sparsity_scale=sparsity_scale)
        self.T, self.W, self.nf = T, window_size, n_first_frames
        self.key_frame_interval = key_frame_interval or None
        self.expand = expand_window
        self._current_offset = 0
        self._build(0)

    def _build(self, offset):
        self._current_offset = offset
        g = compute_global_indices(self.T, self.nf, self.key_frame_interval, offset)
        self.global_indices, self.global_set = g, set(g)

    def set_step(self, step_idx):
        if not self.key_frame_interval:
            return
        offset = step_idx % self.key_frame_interval
        if offset == self._current_offset:
            return
        self._build(offset)

    def window_ctx(self, f):
        """The non-global frames of f's window (LVSAMetadata.build, world 1)."""
        lo, hi = get_window_bounds(f, self.W, self.T, self.expand, self.global_set, len(self.global_indices))
        return [wf for wf in range(lo, hi + 1) if wf not in self.global_set]


def run_to_step(proc, step, rotate, callback=True):
    """The examples' loop up to `step`: with --rotate-keyframes, set_step(i)
    after step i's attention (callback=False: before it, the negative control)."""
    if rotate:
        for i in range(step + (0 if callback else 1)):
            proc.set_step(i)
    return proc
