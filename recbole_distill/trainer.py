"""Trainers for recbole-distill's models, and resumable, atomically saved checkpoints for every model."""

import os
import random
import time

import numpy as np
import torch
from recbole.trainer import Trainer
from recbole.utils import set_color
from torch.optim.lr_scheduler import LambdaLR

from recbole_distill.data.artifacts import atomic_write
from recbole_distill.data.dataset import TARGET_POS
from recbole_distill.errors import RecBoleDistillError
from recbole_distill.teacher.ranking import mask_history, resolve_exclude_history


def resume_file_of(saved_model_file):
    """Where a run whose best checkpoint is ``saved_model_file`` keeps its resume state."""
    root, ext = os.path.splitext(saved_model_file)
    return f"{root}-resume{ext}"


class CheckpointMixin:
    r"""Checkpoints that survive a killed run and work in a distributed one, for RecBole's trainers.

    * Every checkpoint is written to a temporary file and renamed into place: a kill never leaves a
      half-written ``.pth``.
    * At the start of each epoch the trainer writes ``<best checkpoint>-resume.pth``: RecBole's checkpoint
      fields plus the best result so far, the path of the best checkpoint, the learning-rate schedule and
      every random state (torch, numpy, python, the training loader's shuffle). :meth:`resume_checkpoint`
      restores all of it, so a run killed mid-epoch repeats that epoch exactly and ends with the metrics of
      an uninterrupted run. The file is removed when training finishes.
    * :attr:`train_epoch_seconds` holds the training time of every epoch (evaluation excluded), kept across a
      resume, so that a benchmark run killed and resumed reports the epochs of the whole run.
    * In a distributed run every rank uses rank 0's checkpoint name (RecBole names it by each rank's clock,
      and only rank 0 writes it) and waits for rank 0's last save before the best model is loaded.
    """

    def __init__(self, config, model):
        super().__init__(config, model)
        self.train_epoch_seconds = []
        if not config["single_spec"]:
            names = [self.saved_model_file]
            torch.distributed.broadcast_object_list(names, src=0)
            self.saved_model_file = names[0]

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if load_best_model and not self.config["single_spec"]:
            torch.distributed.barrier()  # rank 0 has written the best checkpoint before any rank reads it
        return super().evaluate(eval_data, load_best_model, model_file, show_progress)

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        target = kwargs.pop("saved_model_file", self.saved_model_file)
        save = super()._save_checkpoint  # RecBole's checkpoint, torch.save'd into the temporary file
        atomic_write(target, lambda f: save(epoch, verbose=False, saved_model_file=f, **kwargs))
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {target}")

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        loader_state = getattr(self, "_resumed_loader_state", None)
        if loader_state is not None:
            train_data.generator.set_state(loader_state)
            self._resumed_loader_state = None
        if self._keeps_resume_state:
            self._save_resume_state(epoch_idx, train_data)
        start = time.perf_counter()
        losses = super()._train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)
        self.train_epoch_seconds.append(time.perf_counter() - start)
        return losses

    def _save_resume_state(self, epoch_idx, train_data):
        state = {
            "config": self.config,
            "epoch": epoch_idx - 1,  # RecBole resumes at ``epoch + 1``
            "cur_step": self.cur_step,
            "best_valid_score": self.best_valid_score,
            "best_valid_result": self.best_valid_result,
            "best_model_file": self.saved_model_file,
            "train_epoch_seconds": self.train_epoch_seconds,
            "state_dict": self.model.state_dict(),
            "other_parameter": self.model.other_parameter(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.warmup.state_dict() if getattr(self, "warmup", None) else None,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
                "loader": train_data.generator.get_state(),
            },
        }
        atomic_write(resume_file_of(self.saved_model_file), lambda f: torch.save(state, f, pickle_protocol=4))

    def resume_checkpoint(self, resume_file):
        """Continue a run from the ``-resume.pth`` file it wrote (RecBole's method, plus the random states)."""
        checkpoint = torch.load(resume_file, map_location=self.device)
        if "rng" not in checkpoint:
            raise RecBoleDistillError(
                f"'{resume_file}' is a model checkpoint, not a resume state. Pass the '-resume.pth' file that "
                "an interrupted run left next to its checkpoint."
            )
        super().resume_checkpoint(resume_file)
        self.saved_model_file = checkpoint["best_model_file"]
        self.best_valid_result = checkpoint["best_valid_result"]
        self.train_epoch_seconds = list(checkpoint.get("train_epoch_seconds", []))
        if checkpoint["scheduler"] is not None:
            self.warmup.load_state_dict(checkpoint["scheduler"])
        rng = checkpoint["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self._resumed_loader_state = rng["loader"]

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        # resuming a distributed run would need every rank's random states; those runs keep RecBole's checkpoints
        self._keeps_resume_state = saved and self.config["single_spec"]
        result = super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)
        resume_file = resume_file_of(self.saved_model_file)
        if os.path.exists(resume_file):
            os.remove(resume_file)
        return result


class HistoryFreeEvaluationMixin:
    r"""Full-ranking evaluation that leaves out the items each user had before the target, for every model.

    RecBole masks a user's training items when it ranks for a general recommender, but not for a sequential
    one (its evaluation loader gives no ``history_index`` there), so a sequential model spends top-K places
    on items the user already has. With ``eval_exclude_history`` (``~``: on exactly when no user has an
    item twice, as ``teacher_exclude_history``) every item of the user's whole history before the sample's
    target is masked, over more than the ``MAX_ITEM_LIST_LENGTH`` items the sample carries. The datasets of
    :func:`~recbole_distill.utils.create_dataset` know those histories; for other datasets nothing changes.
    """

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        dataset = eval_data._dataset
        masks = hasattr(dataset, "history_index") and resolve_exclude_history(
            self.config["eval_exclude_history"], dataset, key="eval_exclude_history"
        )
        self._history_of = dataset if masks else None
        return super().evaluate(eval_data, load_best_model, model_file, show_progress)

    def _full_sort_batch_eval(self, batched_data):
        interaction, scores, positive_u, positive_i = super()._full_sort_batch_eval(batched_data)
        dataset = getattr(self, "_history_of", None)
        if dataset is not None:
            users, positions = interaction[dataset.uid_field].cpu(), interaction[TARGET_POS].cpu()
            mask_history(scores, dataset, users, positions)
        return interaction, scores, positive_u, positive_i


def with_checkpoints(trainer_class):
    """``trainer_class`` (one of RecBole's trainers) with :class:`CheckpointMixin`'s checkpoints and
    :class:`HistoryFreeEvaluationMixin`'s evaluation."""
    bases = (CheckpointMixin, HistoryFreeEvaluationMixin, trainer_class)
    return type(trainer_class.__name__, bases, {"__doc__": trainer_class.__doc__})


class DistillTrainer(CheckpointMixin, HistoryFreeEvaluationMixin, Trainer):
    r"""RecBole's :class:`~recbole.trainer.Trainer` that names each part of a distilled loss.

    A student's ``calculate_loss`` returns a tuple of loss parts (e.g. the model's own loss and the
    ranking distillation term); RecBole logs them as ``train_loss1, train_loss2``. This trainer logs
    and plots them under the names the model gives in ``loss_names``. Training, early stopping on
    validation, checkpoints and evaluation are RecBole's; checkpoints resume (:class:`CheckpointMixin`) and
    evaluation can leave history items out (:class:`HistoryFreeEvaluationMixin`).

    With ``warmup_steps: n`` the learning rate rises linearly from 0 to ``learning_rate`` over the first
    ``n`` optimizer steps (as BERT is fine-tuned), then stays there.
    """

    def __init__(self, config, model):
        super().__init__(config, model)
        warmup = config["warmup_steps"] or 0
        if warmup:
            self.warmup = LambdaLR(self.optimizer, lambda step: min(1.0, (step + 1) / warmup))
            self.optimizer.register_step_post_hook(lambda *_: self.warmup.step())

    def _loss_names(self, losses):
        names = self.model.loss_names
        if isinstance(losses, tuple) and names and len(names) == len(losses):
            return names
        return None

    def _generate_train_loss_output(self, epoch_idx, s_time, e_time, losses):
        names = self._loss_names(losses)
        if names is None:
            return super()._generate_train_loss_output(epoch_idx, s_time, e_time, losses)
        places = self.config["loss_decimal_place"] or 4
        parts = ", ".join(set_color(name, "blue") + f": {loss:.{places}f}" for name, loss in zip(names, losses))
        return (
            set_color("epoch %d training", "green") % epoch_idx
            + " ["
            + set_color("time", "blue")
            + f": {e_time - s_time:.2f}s, "
            + set_color("train loss", "blue")
            + f": {sum(losses):.{places}f}, {parts}]"
        )

    def _add_train_loss_to_tensorboard(self, epoch_idx, losses, tag="Loss/Train"):
        names = self._loss_names(losses)
        if names is None:
            return super()._add_train_loss_to_tensorboard(epoch_idx, losses, tag)
        self.tensorboard.add_scalar(tag, sum(losses), epoch_idx)
        for name, loss in zip(names, losses):
            self.tensorboard.add_scalar(f"{tag}/{name}", loss, epoch_idx)
