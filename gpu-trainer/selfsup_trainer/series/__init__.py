"""Time series: readers (:mod:`.data`), the patch Transformer (:mod:`.models`), the objectives
(:mod:`.masked`, :mod:`.temporal`, :mod:`.contrastive`), the pretext the engine trains
(:mod:`.pretext`) and the ``pretrain`` hooks / ``checkpoint_probe`` (:mod:`.pipeline`).
"""
