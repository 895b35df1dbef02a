"""TRL ``SFTTrainer`` runs: supervised fine-tuning of a tiny causal LM built from code.

Nothing comes from the hub: the model is a 2-layer ``LlamaForCausalLM`` (hidden 32) built
from a ``LlamaConfig``, the tokenizer a word-level ``tokenizers`` model over the corpus'
own words wrapped in ``PreTrainedTokenizerFast``, and the data a
``datasets.Dataset.from_dict`` of generated text: each sample is a topic word ``t<k>``
followed by an arithmetic progression of words ``w<i>`` (mod 32), so the LM has something
to learn. ``SFTTrainer`` tokenizes the text itself (its ``Adding EOS`` / ``Tokenizing``
progress bars are in the log) and trains with the Trainer's loop: the tqdm bar, the
logged dicts with TRL's ``entropy``, ``mean_token_accuracy`` and ``num_tokens``.

The loss is TRL's own, except for two causes that hand it a loss through
``compute_loss_func`` (TRL warns that it is deprecated): ``unsafe_ce``, a hand-written
``-(onehot * log(softmax(logits))).sum(-1)`` (``0 * log(0)`` once a probability
underflows), and ``count_norm``, the cross-entropy of the first topic word divided by how
many of it the batch holds (0 / 0 when none). ``corrupt_sample``: one sample carries a
word whose embedding row is nan / inf (a corrupt row), so the steps that batch it compute
a non-finite loss. The trace is written by a ``TrainerCallback`` with the loss
``compute_loss`` returned (``state.global_step``, what the bar counts) and the gradient
norm before clipping. Variants: ``tqdm`` (defaults, ``logging_nan_inf_filter=True``),
``tqdm-nofilter`` (``logging_nan_inf_filter=False``), ``notqdm`` (``disable_tqdm=True``).
"""

from __future__ import annotations

import numpy as np
import torch

from corpus.frameworks import common as C
from corpus.frameworks.hf import optimizers, trace_callback, train, trainer_args

WORDS = 32
SPECIAL = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "x_corrupt"]
TOPICS = 8


def vocab() -> dict[str, int]:
    toks = SPECIAL + [f"t{i}" for i in range(TOPICS)] + [f"w{i}" for i in range(WORDS)]
    return {t: i for i, t in enumerate(toks)}


def make_tokenizer():
    """A word-level tokenizer over the corpus' words, built in code: ``[BOS] text`` (+ TRL's EOS)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    v = vocab()
    tk = Tokenizer(models.WordLevel(v, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.post_processor = processors.TemplateProcessing(single="[BOS] $A", special_tokens=[("[BOS]", v["[BOS]"])])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="[BOS]", eos_token="[EOS]", pad_token="[PAD]",
                                   unk_token="[UNK]")


def make_texts(spec: dict) -> list[str]:
    """``t<k> w<s> w<s+d> ...``: a topic (``classes`` of them) and a progression of 10 words."""
    rng = np.random.default_rng(spec["seed"])
    k = min(TOPICS, spec.get("classes", 4))
    texts = []
    for _ in range(spec["n_samples"]):
        start, stride = rng.integers(0, WORDS), rng.integers(1, 5)
        texts.append(f"t{rng.integers(0, k)} " + " ".join(f"w{(start + stride * j) % WORDS}" for j in range(10)))
    if spec.get("corrupt_index") is not None:
        words = texts[spec["corrupt_index"]].split()
        words[5] = "x_corrupt"
        texts[spec["corrupt_index"]] = " ".join(words)
    return texts


def build_model(spec: dict):
    from transformers import LlamaConfig, LlamaForCausalLM
    v = vocab()
    cfg = LlamaConfig(vocab_size=len(v), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
                      pad_token_id=v["[PAD]"], bos_token_id=v["[BOS]"], eos_token_id=v["[EOS]"])
    model = LlamaForCausalLM(cfg)
    C.init_model(model, spec)
    if spec.get("corrupt_index") is not None:
        with torch.no_grad():  # the corrupt sample's word: a non-finite embedding row
            model.get_input_embeddings().weight[v["x_corrupt"]] = float(spec.get("corrupt_value", "nan"))
    return model


def lm_loss(spec: dict):
    """The hand-written loss of ``unsafe_log`` / ``label_count_zero`` (``compute_loss_func``), else None."""
    kind = spec.get("loss", "ce")
    rare = vocab()["t0"]

    def loss(outputs, labels, num_items_in_batch=None):
        logits, target = outputs.logits[:, :-1].float(), labels[:, 1:]
        mask = target != -100
        t = target.clamp(min=0)
        if kind == "unsafe_bce":  # written out by hand: 0 * log(0) = nan once a probability underflows
            onehot = torch.nn.functional.one_hot(t, logits.shape[-1]).float()
            per = -(onehot * torch.log(torch.softmax(logits, -1))).sum(-1)
            return per[mask].mean()
        per = torch.nn.functional.cross_entropy(logits.transpose(1, 2), t, reduction="none")
        is_rare = (target == rare).float()
        keep = mask.float() * (1 - is_rare)
        return (per * keep).sum() / keep.sum() + (per * is_rare).sum() / is_rare.sum()

    return loss if kind in ("unsafe_bce", "count_norm") else None


def main() -> None:
    spec = C.load_spec()
    C.seed_all(spec["seed"])
    from datasets import Dataset
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer
    set_seed(spec["seed"])
    model = build_model(spec)
    trace = C.Trace(spec)

    class Traced(SFTTrainer):
        last_loss = float("nan")

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            self.last_loss = float((out[0] if return_outputs else out).detach())
            return out

    args = SFTConfig(**trainer_args(spec), max_length=16, dataset_text_field="text")
    trainer = Traced(model=model, args=args, train_dataset=Dataset.from_dict({"text": make_texts(spec)}),
                     processing_class=make_tokenizer(), compute_loss_func=lm_loss(spec),
                     optimizers=optimizers(spec, model),
                     callbacks=[trace_callback(spec, trace, model, lambda: trainer.last_loss)])
    train(trainer, spec)
    trace.close()


if __name__ == "__main__":
    main()
