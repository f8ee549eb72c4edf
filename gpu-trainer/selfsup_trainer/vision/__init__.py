"""Images: decoding and preprocessing shared with the edge (:mod:`.preprocess`), datasets
(:mod:`.data`), augmentations, encoders (:mod:`.models`), the objectives (:mod:`.simclr`,
:mod:`.mae`), the pretext (:mod:`.pretext`) and the ``pretrain`` hooks (:mod:`.pipeline`)."""
