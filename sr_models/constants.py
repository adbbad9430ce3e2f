"""The paper's fixed numbers that more than one module uses, one copy each (a leaf module: it imports nothing).

Per-data-set facts (classes, colours, training crop and test sizes) live in `sr_models.data.metadata.DatasetInfo`.
"""

IGNORE_INDEX = 255  # label of unlabelled pixels in every segmentation data set
AUX_WEIGHT = 0.4  # loss weight of the auxiliary FCN head on stage 3 (PSPNet's deep supervision, Section IV-A)
OHEM_MIN_KEPT = 100_000  # OHEM keeps at least this many hardest pixels per batch (Section IV-C)
EVAL_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)  # multi-scale + flip evaluation (Section IV-C)
