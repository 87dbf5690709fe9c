"""Training: pre-training a model series (:mod:`.pretrain`), supervised fine-tuning on a task
(:mod:`.finetune`) and instruction tuning on a conversational mixture (:mod:`.instruct`).

Each takes one typed, validated arguments object from :mod:`.args`, a torch-free module (the
config schema and the engine import it without loading torch). A new training setting is a field
there and its use in the one function that consumes it.
"""
