r"""A control teacher: each sample's own next item as its only candidate.

Ranking distillation adds a next-item term to a student's loss whatever the teacher knows. This control
keeps a teacher folder's samples and item embeddings and replaces its top-K by the one item the student's
own loss already names, the sample's true next item (K = 1, scored with the teacher's ``target_scores``).
A student distilled from it receives the extra next-item term and the embeddings, but no knowledge of the
teacher's ranking; its gap to the student distilled from the real rankings is what those rankings add.
The new folder's teacher.yaml says what it is and where it came from.

    python -m recbole_distill.teacher.target_ranking --teacher_path=dataset/ml-100k/teacher \
        --output=saved/ml-100k-teacher-target
"""

from logging import getLogger
from pathlib import Path

import numpy as np

from recbole_distill.cli import ArgumentParser, command_line, run_command
from recbole_distill.data.artifacts import TeacherArtifacts, write_item_embeddings, write_ranking
from recbole_distill.errors import TeacherArtifactError

DATASET_KEYS = ("dataset", "samples", "dataset_config", "fingerprint")


def write_target_ranking(teacher_path, output, command=None):
    """Write into ``output`` the rankings of ``teacher_path`` with each sample's true next item as its only
    candidate, and its item embeddings (if any) unchanged."""
    if Path(output).resolve() == Path(teacher_path).resolve():
        raise TeacherArtifactError(f"--output must be a new folder, not the teacher folder '{teacher_path}' itself.")
    source = TeacherArtifacts(teacher_path)
    users, samples, _, _, target_scores = source.ranking()
    dataset_info = {key: source.meta.get(key) for key in DATASET_KEYS}
    info = {
        "teacher": f"control: each sample's true next item, from {teacher_path} ({source.meta['ranking'].get('teacher')})",
        "score_kind": source.meta["ranking"]["score_kind"],
        "exclude_history": source.meta["ranking"].get("exclude_history"),
        "command": command,
    }
    write_ranking(
        output, dataset_info, items=source.items, users=users, samples=samples,
        topk=np.asarray(samples[:, 2:3]), scores=np.asarray(target_scores)[:, None], target_scores=target_scores, info=info,
    )
    if source.has_embedding:
        write_item_embeddings(
            output, dataset_info, items=source.items, embeddings=source.item_embeddings(),
            info={**source.meta["embedding"], "copied_from": str(teacher_path)},
        )
    getLogger().info(f"Target-only teacher written: {output} ({len(samples)} samples, K=1)")


def main():
    parser = ArgumentParser(__doc__)
    parser.add_argument("--teacher_path", required=True, help="teacher folder whose samples and embeddings are kept")
    parser.add_argument("--output", required=True, help="new folder for the control teacher")
    args, _ = parser.parse_known_args()
    write_target_ranking(args.teacher_path, args.output, command=command_line("recbole_distill.teacher.target_ranking"))


if __name__ == "__main__":
    run_command(main)
