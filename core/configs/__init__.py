"""What a run is: validated, frozen configuration, the five configurations and profiles, and paths."""
from core.configs.choices import ARCHITECTURES, AUGMENT_SETS, FER_LABELS, OPTIMIZERS
from core.configs.config import (
    LR_SCHEDULES,
    MONITORS,
    TOGGLES,
    TTA_MODES,
    WEIGHT_SOURCES,
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    TrainConfig,
)
from core.configs.paths import PROJECT_ROOT, artifacts_dir, atomic_write, data_dir

__all__ = [
    "ARCHITECTURES", "FER_LABELS", "OPTIMIZERS", "AUGMENT_SETS", "LR_SCHEDULES", "MONITORS", "PROJECT_ROOT", "TOGGLES", "TTA_MODES", "WEIGHT_SOURCES",
    "ConfigError", "DataConfig", "ModelConfig", "OptimizerConfig", "RunConfig", "TrainConfig",
    "artifacts_dir", "atomic_write", "data_dir",
]
