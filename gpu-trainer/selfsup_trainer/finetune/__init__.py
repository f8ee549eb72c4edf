"""Fine-tuning a registered version on a labeled set: encoder + linear head, exported with a
``logits`` output next to the embeddings (issue 18, ft_contract)."""
