"""The one list of timm's own model tests (`tests/test_models.py` of the installed timm's sdist) that do not apply to
a model of this package, each with its reason. tests/test_timm_contract.py runs every other test of that file on
every model sr-models registers, and fails if an entry here matches no collected test.

Entries: (test function, which models: "segmenters" or "all", reason).
"""

INAPPLICABLE = [
    ("test_model_backward", "segmenters",
     "asserts outputs.shape[-1] == num_classes, the width of a classifier's logits; a segmenter's last axis is the "
     "image width (its backward reaching every parameter: test_timm_api.py::test_backward_reaches_every_parameter)"),
    ("test_model_backward_fx", "segmenters",
     "the same classifier-width assertion on the FX-traced model (FX training graphs of the segmenters: "
     "test_timm_api.py::test_fx_torchscript_and_export_at_two_sizes)"),
    ("test_model_load_pretrained", "all",
     "downloads the registry's weights from the Hub; none are published and CI has no Hub (timm's weight loading, "
     "in_chans and num_classes adaptation: test_timm_api.py::test_local_dir_num_classes_reinitialises_every_classifier)"),
    ("test_model_features_pretrained", "all",
     "downloads the registry's weights from the Hub, as above (features_only after loading a saved folder: "
     "test_timm_api.py::test_local_dir_num_classes_reinitialises_every_classifier)"),
]
