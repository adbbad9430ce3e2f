"""Table IX: GMACs of every detector (a) and Panoptic FPN (b) at 1200x800, SR and NL deltas, and where SR could go.

Counted as mmdetection's `get_flops` counts (sr_models.profile.count_detector_macs): backbone + FPN + RPN head,
the box head on 1000 proposals and the mask head on 100, per cascade stage, Panoptic FPN's semantic head; the
1200x800 image padded to 1216x800
as torchvision's transform pads it (size divisible by 32). Multiply-adds of convolutions and matrix products only.
`--forward` also runs every detector once in eval on a 800x1200 image (CPU) and reports its time.
Usage: python bench/detection.py [--forward] [--output bench/results/detection.md]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import sr_models
from sr_models.layers import SqueezeReasoning
from sr_models.models.detection import timm_fpn_backbone
from sr_models.models.detection.backbone import SR_DETECTION_ARGS
from sr_models.profile import count_detector_macs, count_macs, count_params

SIZE = (800, 1216)  # H x W of a 1200x800 image after torchvision's padding
PAPER = {  # Table IX(a): GFLOPs of the base detectors, deltas of +NL / +SR
    "maskrcnn_resnet50_fpn": 275.58, "maskrcnn_nl_resnet50_fpn": 30.5, "maskrcnn_sr_resnet50_fpn": 0.56,
    "maskrcnn_resnet101_fpn": 351.65, "maskrcnn_nl_resnet101_fpn": 45.7, "maskrcnn_sr_resnet101_fpn": 1.32,
    "maskrcnn_resnext101_32x4d_fpn": 355.37, "maskrcnn_sr_resnext101_32x4d_fpn": 1.32,
    "cascade_maskrcnn_resnext101_32x4d_fpn": 519.90, "cascade_maskrcnn_sr_resnext101_32x4d_fpn": 1.32,
}
PAPER_PANOPTIC = {  # Table IX(b)
    "panoptic_fpn_resnet50": 270.8, "panoptic_fpn_nl_resnet50": 30.5, "panoptic_fpn_sr_resnet50": 0.56,
    "panoptic_fpn_resnet101": 346.87, "panoptic_fpn_nl_resnet101": 45.7, "panoptic_fpn_sr_resnet101": 1.32,
}
BASE = {"panoptic_fpn_sr_resnet50": "panoptic_fpn_resnet50", "panoptic_fpn_nl_resnet50": "panoptic_fpn_resnet50",
        "panoptic_fpn_sr_resnet101": "panoptic_fpn_resnet101", "panoptic_fpn_nl_resnet101": "panoptic_fpn_resnet101",
        "maskrcnn_sr_resnet50_fpn": "maskrcnn_resnet50_fpn", "maskrcnn_nl_resnet50_fpn": "maskrcnn_resnet50_fpn",
        "maskrcnn_sr_resnet101_fpn": "maskrcnn_resnet101_fpn", "maskrcnn_nl_resnet101_fpn": "maskrcnn_resnet101_fpn",
        "maskrcnn_sr_resnext101_32x4d_fpn": "maskrcnn_resnext101_32x4d_fpn",
        "cascade_maskrcnn_sr_resnext101_32x4d_fpn": "cascade_maskrcnn_resnext101_32x4d_fpn"}
C5 = (1, 2048, SIZE[0] // 32, SIZE[1] // 32)  # layer4 output at 1216x800


def detector_table(paper: dict[str, float], parts: tuple[str, ...]) -> list[str]:
    """One row per detector of `paper` (its base GFLOPs or its delta over `BASE[name]`), MACs per part."""
    rows = [f"| detector | params | {' | '.join(p.replace('_', ' ') for p in parts)} | total GMACs | paper GFLOPs | "
            "ours / paper | delta | paper delta | delta / base |", "|" + "---|" * (8 + len(parts))]
    totals = {}
    for name in paper:  # the Table IX detectors (not the CPU-sized ones)
        with torch.device("meta"):
            model = sr_models.create_detector(name, num_classes=81)
        counts = {k: v / 1e9 for k, v in count_detector_macs(model, SIZE).items()}
        totals[name] = counts["total"]
        cells = " | ".join(f"{counts[k]:.2f}" for k in parts)
        if name in BASE:
            delta = totals[name] - totals[BASE[name]]
            reference = f"{paper[BASE[name]] + paper[name]:.2f}"
            tail = (f"{totals[name] / float(reference):.3f} | +{delta:.2f} | +{paper[name]} | "
                    f"{delta / totals[BASE[name]]:.2%}")
        else:
            reference, tail = f"{paper[name]:.2f}", f"{totals[name] / paper[name]:.3f} | | | "
        rows.append(f"| {name} | {count_params(model) / 1e6:.2f}M | {cells} | {counts['total']:.2f} | {reference} | "
                    f"{tail} |")
    return rows


def sr_candidates_table() -> list[str]:
    """Where SR could go and what it costs at 1216x800; deltas are the same for R-50, R-101 and X-101 (layer4)."""
    def backbone_macs(name: str, **kwargs) -> float:
        with torch.device("meta"):
            fpn = timm_fpn_backbone(name, **kwargs)
        return count_macs(fpn, (1, 3, *SIZE)) / 1e9

    base = backbone_macs("resnet50")
    module = {args: count_macs(SqueezeReasoning(2048, **dict(zip(("squeeze", "reduction"), args))), C5) / 1e9
              for args in (("ghp", 2), ("ghp", 16), ("ghp", 32), ("gap", 16))}
    chosen = backbone_macs("resnet50", context="sr") - base
    rows = [
        ("classifier gate (Table X) in every bottleneck: backbone `sr_resnet50`", backbone_macs("sr_resnet50") - base),
        ("SR GHP+GCN, r = 2 (the segmentation head's), each layer4 bottleneck", 3 * module[("ghp", 2)]),
        ("SR GHP+GCN, r = 16, last layer4 bottleneck only", module[("ghp", 16)]),
        ("SR GAP+GCN, r = 16, each layer4 bottleneck", 3 * module[("gap", 16)]),
        (f"**SR GHP+GCN, r = {SR_DETECTION_ARGS['reduction']}, K = {SR_DETECTION_ARGS['num_nodes']}, each layer4 "
         "bottleneck (ours)**", chosen),
    ]
    lines = ["| SR insertion (R-50 FPN backbone) | delta GMACs | / paper R-50 (+0.56) | / paper R-101 (+1.32) |",
             "|---|---|---|---|"]
    lines += [f"| {what} | +{d:.3f} | {d / 0.56:.2f} | {d / 1.32:.2f} |" for what, d in rows]
    return lines


def forward_table(names) -> list[str]:
    lines = ["| detector | forward at 800x1200 (s) | detections | mask shape | panoptic segments |", "|---|---|---|---|---|"]
    image = torch.rand(3, 800, 1200, generator=torch.Generator().manual_seed(0))
    for name in names:
        torch.manual_seed(0)
        model = sr_models.create_detector(name, num_classes=81, box_score_thresh=0.0).eval()
        start = time.perf_counter()
        with torch.no_grad():
            out = model([image])[0]
        segments = len(out["segments_info"]) if "segments_info" in out else ""
        lines.append(f"| {name} | {time.perf_counter() - start:.1f} | {len(out['boxes'])} | "
                     f"{tuple(out['masks'].shape)} | {segments} |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forward", action="store_true", help="also run every detector once at 800x1200 on CPU")
    parser.add_argument("--output", type=Path, help="also write the tables to this markdown file")
    args = parser.parse_args()
    sections = [
        f"torch {torch.__version__}; GMACs at {SIZE[1]}x{SIZE[0]} (1200x800 padded), 1000 box / 100 mask RoIs, "
        "81 classes; paper = Table IX GFLOPs (mmdetection's counter, which also counts BN, ReLU and additions)",
        "Table IX(a) detectors:",
        "\n".join(detector_table(PAPER, ("backbone+fpn", "rpn", "box_head", "mask_head"))),
        "Table IX(b) Panoptic FPN (COCO's 53 stuff classes):",
        "\n".join(detector_table(PAPER_PANOPTIC, ("backbone+fpn", "rpn", "semantic_head", "box_head", "mask_head"))),
        "Where SR goes (deltas over the plain backbone + FPN):", "\n".join(sr_candidates_table()),
    ]
    if args.forward:
        sections += ["Every detector once in eval, CPU, random weights, box_score_thresh = 0 (so the mask head runs):",
                     "\n".join(forward_table([*PAPER, *PAPER_PANOPTIC]))]
    text = "\n\n".join(sections)
    print(text)
    if args.output:
        args.output.write_text(f"# bench/detection.py\n\n{text}\n")


if __name__ == "__main__":
    main()
