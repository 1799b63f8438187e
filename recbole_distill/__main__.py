"""Train and test a recbole-distill or RecBole model: the flags of RecBole's run_recbole.py.

    python -m recbole_distill                                        # DLLM2RecSASRec on ml-100k
    python -m recbole_distill --model=SASRec --dataset=ml-100k        # a RecBole baseline, same harness
    python -m recbole_distill --model=DLLM2RecGRU4Rec --config_files="a.yaml b.yaml" --epochs=5
    python -m recbole_distill --model=DLLM2RecSASRec --nproc=2        # DistributedDataParallel, 2 processes
    python -m recbole_distill --resume=saved/DLLM2RecSASRec-...-resume.pth   # continue a killed run

``run_recbole_distill.py`` at the top of the checkout is the same command (RecBole's ``run_recbole.py`` style).
"""


import yaml

from recbole_distill.cli import ArgumentParser, config_files, run_command
from recbole_distill.errors import RecBoleDistillError
from recbole_distill.quick_start import run, run_recbole_distill


def named_in(config_file, keys):
    """Which of ``keys`` the YAML file ``config_file`` sets."""
    try:
        with open(config_file, encoding="utf-8") as f:
            values = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise RecBoleDistillError(f"cannot read the config file '{config_file}': {e}") from None
    return {key for key in keys if isinstance(values, dict) and values.get(key) is not None}


def main():
    parser = ArgumentParser()
    parser.add_argument("--model", "-m", type=str, default=None, help="name of models (default: DLLM2RecSASRec)")
    parser.add_argument("--dataset", "-d", type=str, default=None, help="name of datasets (default: ml-100k)")
    parser.add_argument("--config_files", type=str, default=None, help="config files")
    parser.add_argument("--nproc", type=int, default=1, help="the number of process in this group")
    parser.add_argument("--ip", type=str, default="localhost", help="the ip of master node")
    parser.add_argument("--port", type=str, default="5678", help="the port of master node")
    parser.add_argument("--world_size", type=int, default=-1, help="total number of jobs")
    parser.add_argument("--group_offset", "--offset", type=int, default=0, help="the global rank offset of this group")
    parser.add_argument("--resume", type=str, default=None, help="the -resume.pth file of an interrupted run")
    args, _ = parser.parse_known_args()

    config_file_list = config_files(args.config_files)
    # a model or dataset named in a config file is used unless the command line names one
    named = set().union(*(named_in(file, ("model", "dataset")) for file in config_file_list or []))
    model = args.model or (None if "model" in named else "DLLM2RecSASRec")
    dataset = args.dataset or (None if "dataset" in named else "ml-100k")
    if args.resume:
        run_recbole_distill(resume_file=args.resume)
    else:
        run(
            model,
            dataset,
            config_file_list=config_file_list,
            nproc=args.nproc,
            world_size=args.world_size,
            ip=args.ip,
            port=args.port,
            group_offset=args.group_offset,
        )


if __name__ == "__main__":
    run_command(main)
