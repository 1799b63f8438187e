"""Train and test a recbole-distill or RecBole model: the flags of RecBole's run_recbole.py.

    python run_recbole_distill.py                                    # DLLM2RecSASRec on ml-100k
    python run_recbole_distill.py --model=SASRec --dataset=ml-100k    # a RecBole baseline, same harness
    python run_recbole_distill.py --model=DLLM2RecGRU4Rec --config_files="a.yaml b.yaml" --epochs=5
"""

import argparse
import sys

from recbole_distill import run_recbole_distill
from recbole_distill.errors import RecBoleDistillError

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", "-m", type=str, default="DLLM2RecSASRec", help="name of models")
    parser.add_argument("--dataset", "-d", type=str, default="ml-100k", help="name of datasets")
    parser.add_argument("--config_files", type=str, default=None, help="config files")
    args, _ = parser.parse_known_args()

    config_file_list = args.config_files.strip().split(" ") if args.config_files else None
    try:
        run_recbole_distill(model=args.model, dataset=args.dataset, config_file_list=config_file_list)
    except RecBoleDistillError as e:
        sys.exit(f"recbole-distill: error: {e}")
