from .sr_resnet import *
from .srnet import *
