"""Train and test a recbole-distill or RecBole model: the flags of RecBole's run_recbole.py.

    python run_recbole_distill.py                                    # DLLM2RecSASRec on ml-100k
    python run_recbole_distill.py --model=SASRec --dataset=ml-100k    # a RecBole baseline, same harness
    python run_recbole_distill.py --model=DLLM2RecGRU4Rec --config_files="a.yaml b.yaml" --epochs=5
    python run_recbole_distill.py --model=DLLM2RecSASRec --nproc=2    # DistributedDataParallel, 2 processes
    python run_recbole_distill.py --resume=saved/DLLM2RecSASRec-...-resume.pth   # continue a killed run
"""

from recbole_distill.__main__ import main
from recbole_distill.cli import run_command

if __name__ == "__main__":
    run_command(main)
