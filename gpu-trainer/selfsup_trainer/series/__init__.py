"""Time series: readers (:mod:`.data`), the patch Transformer (:mod:`.models`), the pretext
wrapper the engine trains (:mod:`.pretext`) and ``pretrain``/``checkpoint_probe``
(:mod:`.pipeline`). Objectives live in ``objectives/series_*.py``.
"""
