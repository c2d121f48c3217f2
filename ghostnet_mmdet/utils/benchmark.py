"""What the benchmark scripts of tools/analysis_tools share: interleaved
timing (these machines are noisy, so every variant is timed in every round,
in a random order) and realistic scores for untrained heads."""
import platform
import random
import re
import statistics
import time
from typing import Callable, Dict, Hashable, List, Sequence

import torch


def cpu_timer(function: Callable) -> float:
    """Wall-clock milliseconds of one call."""
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000


def cuda_timer(function: Callable) -> float:
    """Milliseconds of one call measured with CUDA events."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    function()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end)


def interleaved(functions: Dict[Hashable, Callable], rounds: int, warmup: int,
                timer: Callable = cpu_timer, pause: float = 0.0,
                seed: int = 0) -> Dict[Hashable, List[float]]:
    """Time every function once per round, in a new random order each round
    (seeded), so that no function always follows the same one; ``warmup``
    untimed calls each first. ``pause`` seconds of idling before every
    timed call let the thread pools of the call before go to sleep: on a
    2-core machine onnxruntime's spinning workers slowed an OpenVINO call
    that followed within 20 ms by up to 2.3x (none after 50-100 ms).
    Returns the times of every round."""
    times = {key: [] for key in functions}
    keys = list(functions)
    order = random.Random(seed)
    for function in functions.values():
        for _ in range(warmup):
            function()
    for _ in range(rounds):
        for key in order.sample(keys, len(keys)):
            if pause:
                time.sleep(pause)
            times[key].append(timer(functions[key]))
    return times


def medians(times: Dict[Hashable, List[float]]) -> Dict[Hashable, float]:
    return {key: statistics.median(values) for key, values in times.items()}


def ratio_median(times: Dict[Hashable, List[float]], numerator: Hashable,
                 denominator: Hashable) -> float:
    """The median over rounds of ``numerator``'s time over ``denominator``'s
    in the same round: steadier than a ratio of medians on a noisy machine."""
    return statistics.median(a / b for a, b in zip(times[numerator], times[denominator]))


def best_ratio_median(times: Dict[Hashable, List[float]], numerators: Sequence[Hashable],
                      denominators: Sequence[Hashable]) -> float:
    """The median over rounds of the fastest of ``numerators`` over the
    fastest of ``denominators`` in the same round (e.g. each detector in its
    best runtime)."""
    rounds = zip(zip(*(times[key] for key in numerators)),
                 zip(*(times[key] for key in denominators)))
    return statistics.median(min(top) / min(bottom) for top, bottom in rounds)


def spread_head_scores(detector: torch.nn.Module, seed: int = 0) -> None:
    """Give an untrained detector's heads (its bbox head, or its RPN and RoI
    head) varied, confident scores, so that boxes reach NMS (an untrained
    head scores everything near its prior, 0.01, below every score_thr).
    More than a trained detector's: the GhostShapes RetinaNet-GhostNet sends
    about 4,000 boxes to NMS at 320x320 with these scores and random input,
    2,300 of them kept, where the trained one sends about 1,200 on a
    validation image and keeps about 200. For NMS's true share of the time,
    benchmark trained checkpoints on an image."""
    generator = torch.Generator().manual_seed(seed)
    roi_head = getattr(detector, 'roi_head', None)
    heads = (getattr(detector, 'bbox_head', None), getattr(detector, 'rpn_head', None),
             getattr(roi_head, 'bbox_head', None))
    for head in (head for head in heads if head is not None):
        for name, param in head.named_parameters():
            if 'cls' in name or 'obj' in name:
                spread = torch.randn(param.shape, generator=generator)
                param.data = spread * 2 - 2 if name.endswith('bias') else spread * 0.05


def processor_name() -> str:
    """The processor and the vector ISA extensions that matter for speed
    figures (AVX2, AVX-512, VNNI, AMX), from /proc/cpuinfo."""
    try:
        text = open('/proc/cpuinfo').read()
    except OSError:
        return platform.processor() or 'unknown processor'
    model = re.search(r'model name\s*:\s*(.*)', text)
    flags_line = re.search(r'flags\s*:\s*(.*)', text)
    flags = set(flags_line.group(1).split()) if flags_line else set()
    isa = [f for f in ('avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'amx_int8') if f in flags]
    return f'{model.group(1) if model else "unknown processor"} ({", ".join(isa) or "no AVX2"})'


def output_sum(outputs):
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs, )
    return sum(out.float().mean() for out in outputs)


def cuda_train_infer_steps(networks, batch, size, compile_too):
    """``(name, precision, infer|train)`` -> a step of ``networks`` (name ->
    module on the GPU) on a channels-last batch, in fp32 and bf16 (and
    with ``compile_too``, the NHWC and timm ones under torch.compile):
    what tools/analysis_tools/benchmark_backbone.py times on CUDA."""
    x = torch.randn(batch, 3, size, size, device='cuda').contiguous(
        memory_format=torch.channels_last)
    functions = {}
    variants = [(name, net) for name, net in networks.items()]
    if compile_too:
        variants += [(f'{name}, torch.compile', torch.compile(net)) for name, net in networks.items()
                     if 'NHWC' in name or 'timm' in name]
    for name, net in variants:
        for dtype in (torch.float32, torch.bfloat16):
            tag = 'fp32' if dtype is torch.float32 else 'bf16'
            optimizer = torch.optim.SGD(net.parameters(), lr=1e-4)

            def infer(net=net, dtype=dtype):
                net.eval()
                with torch.no_grad(), torch.autocast('cuda', dtype=dtype,
                                                     enabled=dtype is not torch.float32):
                    net(x)

            def train(net=net, dtype=dtype, optimizer=optimizer):
                net.train()
                with torch.autocast('cuda', dtype=dtype, enabled=dtype is not torch.float32):
                    loss = output_sum(net(x))
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            functions[(name, tag, 'infer')] = infer
            functions[(name, tag, 'train')] = train
    return functions
