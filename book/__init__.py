"""Modern CNNs: the library behind the book's chapters and homework.

Modules: ``data`` (Fashion-MNIST, Imagenette, device-resident loaders), ``models``
(every architecture), ``train`` (``fit``), ``profiles`` (smoke, cpu, gpu),
``experiment`` (recipes to runs), ``summary`` (parameter and multiply-add counts),
``viz`` (plots), ``papers`` (the papers' tables), ``compare`` (the closing chapter:
stored chapter runs read back, every architecture side by side).
"""

__version__ = "0.1.0"
