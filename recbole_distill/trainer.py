"""Trainers for recbole-distill's models."""

from recbole.trainer import Trainer
from recbole.utils import set_color
from torch.optim.lr_scheduler import LambdaLR


class DistillTrainer(Trainer):
    r"""RecBole's :class:`~recbole.trainer.Trainer` that names each part of a distilled loss.

    A student's ``calculate_loss`` returns a tuple of loss parts (e.g. the model's own loss and the
    ranking distillation term); RecBole logs them as ``train_loss1, train_loss2``. This trainer logs
    and plots them under the names the model gives in ``loss_names``. Training, early stopping on
    validation, checkpoints and evaluation are RecBole's.

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
        names = getattr(self.model, "loss_names", None)
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
