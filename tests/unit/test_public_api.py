"""The public API is pinned: adding or removing a name is a deliberate change to this list."""

import ann2snn

PUBLIC = {
    "Ann2SnnError",
    "Attack",
    "CheckReport",
    "Checkpoint",
    "ComparisonReport",
    "ConversionConfig",
    "ConversionReport",
    "CostReport",
    "DatasetInfo",
    "LeakChoice",
    "QuantConfig",
    "RobustnessResult",
    "SimResult",
    "SpikingModel",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "calibrate",
    "calibrate_da",
    "calibrate_li",
    "check",
    "choose_leak",
    "compare",
    "convert",
    "create_model",
    "dataset_info",
    "evaluate",
    "evaluate_accuracy",
    "evaluate_robustness",
    "export_nir",
    "fold_batchnorm",
    "get_leak",
    "list_models",
    "load_checkpoint",
    "load_dataset",
    "make_loader",
    "prepare",
    "register_function",
    "register_layer",
    "register_method",
    "save_checkpoint",
    "set_leak",
    "simulate",
    "spike_cost",
    "train",
    "write_full_report",
}


def test_all_is_pinned():
    assert set(ann2snn.__all__) == PUBLIC
    assert len(ann2snn.__all__) == len(PUBLIC)


def test_every_public_name_resolves_and_is_documented():
    for name in ann2snn.__all__:
        obj = getattr(ann2snn, name)
        if name != "__version__":
            assert (obj.__doc__ or "").strip(), f"ann2snn.{name} has no docstring"
