__all__ = []

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #e0e17d2b
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #44a0fccc
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #44a0fccc
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #44a0fccc
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #44a0fccc
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #44a0fccc
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #656b3d91
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #39ef3229
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #39ef3229
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #451212bc
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #451212bc
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #451212bc
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #451212bc
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #451212bc
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #451212bc
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())

# %% ../nbs/06_cli.ipynb #451212bc
import sys
from .cli import main
if __name__ == '__main__' and __spec__ is not None and __spec__.name == 'vitlab.__main__': sys.exit(main())