"""Text: corpus reader, WordPiece tokenizer, tokenized corpus (:mod:`.data`), the pre-LN and BERT
encoders (:mod:`.model`, :mod:`.bert`), the objectives (:mod:`.mlm`, :mod:`.nsp`,
:mod:`.simcse`), the pretext (:mod:`.pretext`), postprocessing, export, probes, version weights,
the ``pretrain`` hooks (:mod:`.pipeline`) and the Hugging Face importer (:mod:`.importer`)."""
