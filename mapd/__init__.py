"""mapd: Metadata Archaeology via Probe Dynamics (Siddiqui et al., ICLR 2023) -- audit a labelled data set with training dynamics.

What a user needs first is here; everything else stays in its module (`mapd.baselines`, `mapd.metadata`, `mapd.probes`, ...)."""
__version__ = "0.1.0"

from .audit import Audit, run_audit
from .settings import AuditConfig, audit_config
from .data import ImageDataset, load_dataset, load_fashion_mnist
from .npz import load_npz
from .image_folder import load_image_folder
from .knn import MAPD
from .store import TrajectoryStore
from .train import Recorder

__all__ = ["Audit", "AuditConfig", "audit_config", "run_audit", "ImageDataset", "load_dataset", "load_fashion_mnist",
           "load_image_folder", "load_npz", "MAPD", "TrajectoryStore", "Recorder"]
