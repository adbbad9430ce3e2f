"""Model families; importing this module registers them in timm's registry."""
from .sr_resnet import *  # noqa: F401,F403  (registers sr_resnet*)
from .srnet import *  # noqa: F401,F403  (registers srnet_*, fcn_*)
