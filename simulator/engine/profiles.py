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

Per-layer costs
---------------
Every profile also lists its layers in definition (forward) order, each with its parameter
tensors (as PyTorch names them) and its forward FLOPs per sample (:class:`LayerCost`);
:func:`layer_costs` gives them for a profile or for the numpy model. The parameter counts
add up to the profile's exactly; the FLOPs add up to ResNet-20's and GPT-2's training FLOPs
(``3 x`` the sum), and ResNet-50's sum is the exact count behind its rounded 4.1 G
(4.089 G multiply-adds). Gradient bucketing (:mod:`simulator.engine.buckets`) uses them.
"""

from dataclasses import dataclass

from ..utils.errors import InputError
from ..utils.yamlfile import did_you_mean

__all__ = ["CostProfile", "LayerCost", "PROFILES", "get_profile", "timing_costs",
           "resnet20_cifar_counts", "resnet20_layers", "resnet50_layers", "gpt2_small_layers",
           "layer_costs"]

FP32_BYTES = 4   # bytes per parameter in a message unless a profile says otherwise


@dataclass(frozen=True)
class LayerCost:
    """One layer: its parameter tensors ``((name, count), ...)`` and forward FLOPs per sample."""

    name: str
    tensors: tuple
    forward_flops: float

    @property
    def params(self):
        """Parameters of the layer (count)."""
        return sum(n for _, n in self.tensors)


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
    layers: tuple = ()               # LayerCost in definition order (empty for "model")

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


def resnet20_layers():
    """ResNet-20 for CIFAR-10 layer by layer (the architecture of :func:`resnet20_cifar_counts`).

    A convolution's layer holds its weight and its batch norm's weight and bias; forward
    FLOPs are 2 per multiply-add.

    Examples
    --------
    >>> layers = resnet20_layers()
    >>> len(layers), layers[0].name, layers[0].tensors
    (20, 'conv1', (('conv1.weight', 432), ('bn1.weight', 16), ('bn1.bias', 16)))
    """
    layers = []

    def conv(name, bn, c_in, c_out, side):
        layers.append(LayerCost(name, ((f"{name}.weight", 9 * c_in * c_out),
                                       (f"{bn}.weight", c_out), (f"{bn}.bias", c_out)),
                                2.0 * 9 * c_in * c_out * side * side))

    conv("conv1", "bn1", 3, 16, 32)
    c_in = 16
    for stage, (c_out, side) in enumerate(((16, 32), (32, 16), (64, 8)), start=1):
        for block in range(3):
            for k in (1, 2):
                prefix = f"layer{stage}.{block}"
                conv(f"{prefix}.conv{k}", f"{prefix}.bn{k}", c_in, c_out, side)
                c_in = c_out
    layers.append(LayerCost("fc", (("fc.weight", 640), ("fc.bias", 10)), 2.0 * 640))
    return tuple(layers)


def resnet50_layers():
    """ResNet-50 for 224x224 ImageNet as torchvision builds it (stride in the 3x3 conv).

    Bottleneck blocks of 1x1, 3x3, 1x1 convolutions (each with batch norm), 3, 4, 6, 3 of
    them with 64, 128, 256, 512 channels (x4 out), a 1x1 downsample conv in each stage's
    first block; a 7x7 stride-2 stem on 112x112 outputs; a 2048 -> 1000 fully connected
    layer. 25,557,032 parameters and 4,089,184,256 multiply-adds (torchvision's
    ResNet50_Weights.IMAGENET1K_V1 lists 25,557,032 parameters and 4.09 GFLOPS).

    Examples
    --------
    >>> layers = resnet50_layers()
    >>> sum(l.params for l in layers), sum(l.forward_flops for l in layers) / 2
    (25557032, 4089184256.0)
    """
    layers = []

    def conv(name, bn, c_in, c_out, k, side):
        layers.append(LayerCost(name, ((f"{name}.weight", k * k * c_in * c_out),
                                       (f"{bn}.weight", c_out), (f"{bn}.bias", c_out)),
                                2.0 * k * k * c_in * c_out * side * side))

    conv("conv1", "bn1", 3, 64, 7, 112)
    c_in, side = 64, 56
    for stage, (width, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=1):
        for block in range(blocks):
            prefix = f"layer{stage}.{block}"
            out_side = side // 2 if stage > 1 and block == 0 else side
            conv(f"{prefix}.conv1", f"{prefix}.bn1", c_in, width, 1, side)
            conv(f"{prefix}.conv2", f"{prefix}.bn2", width, width, 3, out_side)
            conv(f"{prefix}.conv3", f"{prefix}.bn3", width, 4 * width, 1, out_side)
            if block == 0:
                conv(f"{prefix}.downsample.0", f"{prefix}.downsample.1", c_in, 4 * width, 1,
                     out_side)
            c_in, side = 4 * width, out_side
    layers.append(LayerCost("fc", (("fc.weight", 2048 * 1000), ("fc.bias", 1000)),
                            2.0 * 2048 * 1000))
    return tuple(layers)


def gpt2_small_layers(tokens=1024):
    """GPT-2 small layer by layer, with Hugging Face's parameter names.

    Token and position embeddings (``wte`` 50257 x 768, tied with the output head;
    ``wpe`` 1024 x 768), 12 blocks of layer norm, attention (``c_attn`` 768 -> 2304,
    ``c_proj`` 768 -> 768), layer norm and MLP (768 -> 3072 -> 768), a final layer norm:
    124,439,808 parameters. Forward FLOPs follow the profile's ``6 N`` rule layer by layer:
    ``2 x parameters x tokens`` (the tied head's matmul counted on ``wte``; attention scores
    and norms are lower order, as in the rule), so their sum is a third of the profile's.

    Examples
    --------
    >>> layers = gpt2_small_layers()
    >>> len(layers), sum(l.params for l in layers)
    (27, 124439808)
    """
    d, layers = 768, []

    def layer(name, tensors):
        layers.append(LayerCost(name, tuple(tensors), 2.0 * sum(n for _, n in tensors) * tokens))

    layer("wte", [("transformer.wte.weight", 50257 * d)])
    layer("wpe", [("transformer.wpe.weight", 1024 * d)])
    for i in range(12):
        h = f"transformer.h.{i}"
        layer(f"h.{i}.attn", [(f"{h}.ln_1.weight", d), (f"{h}.ln_1.bias", d),
                              (f"{h}.attn.c_attn.weight", d * 3 * d), (f"{h}.attn.c_attn.bias", 3 * d),
                              (f"{h}.attn.c_proj.weight", d * d), (f"{h}.attn.c_proj.bias", d)])
        layer(f"h.{i}.mlp", [(f"{h}.ln_2.weight", d), (f"{h}.ln_2.bias", d),
                             (f"{h}.mlp.c_fc.weight", d * 4 * d), (f"{h}.mlp.c_fc.bias", 4 * d),
                             (f"{h}.mlp.c_proj.weight", 4 * d * d), (f"{h}.mlp.c_proj.bias", d)])
    layer("ln_f", [("transformer.ln_f.weight", d), ("transformer.ln_f.bias", d)])
    return tuple(layers)


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
            "forward; training = 3 x forward x 2 FLOPs per multiply-add; fp32 messages",
            resnet20_layers()),
        CostProfile(
            "resnet50-imagenet", 25_557_032, 4, 3 * 2 * 4.1e9,
            "ResNet-50 on 224x224 ImageNet images: 25.6 M parameters and 4.1 G multiply-adds "
            "forward (torchvision's ResNet50_Weights.IMAGENET1K_V1: 25,557,032 parameters, "
            "4.09 G; He et al. 2016 Table 1 gives 3.8 G for the original stride placement); "
            "training = 3 x forward x 2 FLOPs per multiply-add; fp32 messages",
            resnet50_layers()),
        CostProfile(
            "gpt2-small", _GPT2_SMALL_PARAMS, 4, 6.0 * _GPT2_SMALL_PARAMS * _GPT2_TOKENS,
            "GPT-2 small (Radford et al. 2019): 124 M parameters, one sample = 1024 tokens, "
            "6 N training FLOPs per token (Kaplan et al. 2020, Sec. 2.1) with N = all 124 M "
            "parameters; fp32 messages (DDP all-reduces fp32 gradients of fp32 master "
            "parameters)",
            gpt2_small_layers(_GPT2_TOKENS)),
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


def layer_costs(profile_name, model=None):
    """The layers of a profile, or of the numpy `model` for the profile ``"model"``.

    Parameters
    ----------
    profile_name : str
    model : simulator.learning.workload.MLP, optional
        Needed for ``"model"``: each dense layer ``layer{i}`` holds ``layer{i}.weight``
        (``fan_in x fan_out``) and ``layer{i}.bias``; forward FLOPs ``2 x weights``
        (its ``flops_per_sample`` is 3 times their sum).

    Returns
    -------
    tuple of LayerCost
        In definition (forward) order.

    Examples
    --------
    >>> from simulator.learning.workload import make_model
    >>> [(l.name, l.params, l.forward_flops) for l in layer_costs("model", make_model("mlp", 4, 2, (3,)))]
    [('layer0', 15, 24.0), ('layer1', 8, 12.0)]
    """
    profile = get_profile(profile_name)
    if profile.name != "model":
        return profile.layers
    if model is None:
        raise InputError("the 'model' profile's layers are the numpy model's",
                         field="cost_profile", fix="pass the model")
    return tuple(LayerCost(f"layer{i}", ((f"layer{i}.weight", layer.fan_in * layer.fan_out),
                                         (f"layer{i}.bias", layer.fan_out)),
                           2.0 * layer.fan_in * layer.fan_out)
                 for i, layer in enumerate(model.layers))


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
