"""Cost profiles: "what if the model were this size?"

The numpy model of a run supplies the learning curve. By default it also supplies the costs
the engine charges for it: the bytes of one message (``model.param_bytes``) and the training
FLOPs per sample (``model.flops_per_sample``). A scenario may instead name a *cost profile*
(``timing.cost_profile``), a well-known network whose message size and compute are charged
while the numpy model still learns (docs/semantics.md, "Compute model");
:func:`timing_costs` returns the numbers to charge together with where they came from, for
the run record.

Training FLOPs per sample follow the "3x rule": the backward pass costs about twice the
forward pass (gradients with respect to the activations and to the weights), so
``training = 3 x forward``, and one multiply-add is 2 FLOPs. For dense layers this is the
``6 N`` per token of Kaplan et al. (2020), *Scaling Laws for Neural Language Models*,
Sec. 2.1; :mod:`simulator.learning.workload` counts its own MLP the same way.

Messages are fp32 (4 bytes per parameter) in every profile: PyTorch's DistributedDataParallel
all-reduces gradients in the parameters' dtype, and mixed-precision training keeps fp32
master parameters (the seed's code trains in fp32). A profile for fp16 messages would set
``bytes_per_param=2``.
"""

from dataclasses import dataclass

from ..utils.errors import InputError
from ..utils.yamlfile import did_you_mean

__all__ = ["CostProfile", "PROFILES", "get_profile", "timing_costs", "resnet20_cifar_counts"]

FP32_BYTES = 4   # bytes per parameter in a message unless a profile says otherwise


@dataclass(frozen=True)
class CostProfile:
    """The costs of one network, per replica.

    ``params``, ``bytes_per_param`` and ``flops_per_sample`` are None for the sentinel
    profile ``"model"`` (use the numpy model's own numbers).
    """

    name: str
    params: int | None               # parameters of one replica (count)
    bytes_per_param: int | None      # bytes per parameter in a message: 4 fp32, 2 fp16
    flops_per_sample: float | None   # training FLOPs per sample (forward + backward)
    source: str                      # where the numbers come from

    @property
    def message_bytes(self):
        """Bytes of one message (all parameters, or all gradients, of one replica)."""
        return None if self.params is None else self.params * self.bytes_per_param


def resnet20_cifar_counts():
    """Parameters and forward multiply-adds of ResNet-20 for CIFAR-10, counted layer by layer.

    The architecture of He et al. (2016), Sec. 4.2: a 3x3 conv to 16 channels, then three
    stages of 3 basic blocks (two 3x3 convs each) with 16, 32, 64 channels on 32x32, 16x16
    and 8x8 maps, identity shortcuts (option A: zero padding, no parameters), global average
    pooling and a 64 -> 10 fully connected layer. Convolutions have no bias; each is followed
    by batch norm (2 learnable numbers per channel).

    Returns
    -------
    (params, macs) : (int, int)
        ``(269722, 40551040)``: 0.27 M parameters as in He et al. (2016) Table 6, and
        40.6 M multiply-adds per 32x32 image (forward; batch norm, ReLU and pooling are
        lower order and not counted).
    """
    params, macs = 0, 0

    def conv(c_in, c_out, side):           # 3x3 conv producing a side x side map, + BN
        nonlocal params, macs
        params += 9 * c_in * c_out + 2 * c_out
        macs += 9 * c_in * c_out * side * side

    conv(3, 16, 32)
    c_in = 16
    for c_out, side in ((16, 32), (32, 16), (64, 8)):
        for _ in range(3):                  # n = 3 basic blocks per stage: 6n + 2 = 20 layers
            conv(c_in, c_out, side)
            conv(c_out, c_out, side)
            c_in = c_out
    params += 64 * 10 + 10                  # fully connected layer
    macs += 64 * 10
    return params, macs


_R20_PARAMS, _R20_MACS = resnet20_cifar_counts()
_GPT2_SMALL_PARAMS = 124_439_808   # 12 layers, d_model 768, vocabulary 50257, 1024 positions,
#                                    tied input/output embeddings (OpenAI's released model)
_GPT2_TOKENS = 1024                # one sample = one sequence of n_ctx tokens

PROFILES = {
    profile.name: profile for profile in (
        CostProfile(
            "model", None, None, None,
            "the numpy model itself: its parameter bytes and 6 x weights FLOPs per sample"),
        CostProfile(
            "resnet20-cifar10", _R20_PARAMS, 4, 3 * 2 * _R20_MACS,
            "ResNet-20 on 32x32 CIFAR-10 images (He et al. 2016, Sec. 4.2; 0.27 M parameters "
            "in Table 6), counted layer by layer: 269,722 parameters, 40.6 M multiply-adds "
            "forward; training = 3 x forward x 2 FLOPs per multiply-add; fp32 messages"),
        CostProfile(
            "resnet50-imagenet", 25_557_032, 4, 3 * 2 * 4.1e9,
            "ResNet-50 on 224x224 ImageNet images: 25.6 M parameters and 4.1 G multiply-adds "
            "forward (torchvision's ResNet50_Weights.IMAGENET1K_V1: 25,557,032 parameters, "
            "4.09 G; He et al. 2016 Table 1 gives 3.8 G for the original stride placement); "
            "training = 3 x forward x 2 FLOPs per multiply-add; fp32 messages"),
        CostProfile(
            "gpt2-small", _GPT2_SMALL_PARAMS, 4, 6.0 * _GPT2_SMALL_PARAMS * _GPT2_TOKENS,
            "GPT-2 small (Radford et al. 2019): 124 M parameters, one sample = 1024 tokens, "
            "6 N training FLOPs per token (Kaplan et al. 2020, Sec. 2.1) with N = all 124 M "
            "parameters; fp32 messages (DDP all-reduces fp32 gradients of fp32 master "
            "parameters)"),
    )
}
"""Cost profiles by name. ``"model"`` is the sentinel for the numpy model's own numbers."""


def get_profile(name):
    """The :class:`CostProfile` called `name`.

    Raises
    ------
    InputError
        An unknown name (field ``cost_profile``), with a did-you-mean that also knows
        prefixes (``gpt2`` -> ``gpt2-small``) and the list of profiles.

    Examples
    --------
    >>> get_profile("resnet20-cifar10").params
    269722
    """
    if name in PROFILES:
        return PROFILES[name]
    hint = did_you_mean(name, PROFILES)
    starting = [known for known in PROFILES if known.startswith(str(name))]
    if hint is None and len(starting) == 1:
        hint = f"did you mean '{starting[0]}'?"
    raise InputError(f"unknown cost profile {name!r}", field="cost_profile",
                     fix=(hint + " " if hint else "") + "choose from: " + ", ".join(PROFILES))


def timing_costs(profile_name, model):
    """The message size and compute the engine charges for one replica, and their source.

    Parameters
    ----------
    profile_name : str
        A key of :data:`PROFILES`; ``"model"`` takes the numbers of `model`.
    model : simulator.learning.workload.MLP
        The numpy model (attributes ``param_bytes``, ``flops_per_sample``, ``num_params``).

    Returns
    -------
    dict
        ``message_bytes`` (bytes of one replica's parameters or gradients),
        ``flops_per_sample`` (training FLOPs per sample), ``profile`` (the name) and
        ``source`` (a sentence saying where the numbers come from).

    Raises
    ------
    InputError
        An unknown profile name, with a did-you-mean.

    Examples
    --------
    >>> from simulator.learning.workload import make_model
    >>> model = make_model("mlp", 64, 10, hidden=(64,))
    >>> costs = timing_costs("model", model)
    >>> costs["message_bytes"], costs["flops_per_sample"]
    (19240, 28416.0)
    >>> timing_costs("resnet20-cifar10", model)["message_bytes"]
    1078888
    """
    profile = get_profile(profile_name)
    if profile.name == "model":
        layers = "-".join(str(w) for w in (model.input_dim, *model.hidden, model.num_classes)) \
            if hasattr(model, "hidden") else "?"
        # Messages are fp32 (docs/semantics.md, "Compute model"), whatever the replay computes in.
        return {"message_bytes": int(model.num_params * FP32_BYTES),
                "flops_per_sample": float(model.flops_per_sample),
                "profile": "model",
                "source": f"numpy model {getattr(model, 'name', 'model')} {layers}: "
                          f"{model.num_params} parameters x {FP32_BYTES} bytes (fp32), "
                          f"6 x weights = {model.flops_per_sample} FLOPs per sample"}
    return {"message_bytes": int(profile.message_bytes),
            "flops_per_sample": float(profile.flops_per_sample),
            "profile": profile.name,
            "source": profile.source}
