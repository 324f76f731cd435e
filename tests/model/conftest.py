import sys
from pathlib import Path

# The shared strategies module lives one level up, in tests/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
