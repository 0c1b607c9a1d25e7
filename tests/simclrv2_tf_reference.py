"""An independent TensorFlow (TF1 graph) SimCLRv2 ResNet-50 sk0: writes checkpoints and computes forward passes.

Written from the structure of google-research/simclr's TF1 code (``resnet.py``: ``conv2d_fixed_padding``,
``batch_norm_relu``, ``bottleneck_block``, ``resnet_v1_generator``; ``model_util.py``: ``linear_layer``,
``projection_head``, ``supervised_head``) and ``peers-and-checkpoints.md`` B.3, without reusing any of
xai-ssl's conversion code. Variable names are not spelled out here: like the original ``tf.layers`` calls,
every layer opens ``variable_scope(None, default_name='conv2d' | 'batch_normalization' | 'dense')`` and TF
numbers them (``conv2d``, ``conv2d_1``, ...) in creation order, so the file has the names the real
``r50_{1,2}x_sk0/model.ckpt-250228`` has: ``[ema_model/]base_model/conv2d[_N]/kernel`` (HWIO),
``[ema_model/]base_model/batch_normalization[_N]/{gamma,beta,moving_mean,moving_variance}``,
``[ema_model/]head_contrastive/nl_{0,1,2}/{dense/kernel, batch_normalization/*}`` (no beta in ``nl_2``),
``head_supervised/linear_layer/dense/{kernel,bias}``, ``<trainable>/Momentum`` optimizer slots and
``global_step``.

Values are random (TF initialisers, graph seed) and batch norm is non-trivial (random gamma, beta, moving
mean and variance), so any wrong mapping changes the outputs. Batch norm runs in inference mode with the
stored moving statistics; the stem max-pool is TF's ``padding='SAME'`` (see :func:`tf_same_max_pool`).
This module needs TensorFlow; it is imported only by ``test_simclrv2_tf.py``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1
BN_EPSILON = 1e-5  # resnet.BATCH_NORM_EPSILON
BLOCKS = {50: (3, 4, 6, 3)}
GLOBAL_STEP = 250228  # the step of the published checkpoints (model.ckpt-250228)


def _conv2d_fixed_padding(x: tf.Tensor, filters: int, kernel_size: int, strides: int) -> tf.Tensor:
    """Conv without bias; stride > 1: explicit (k-1)//2 / rest padding, then VALID; else SAME. NHWC."""
    c_in = int(x.shape[-1])
    with tf1.variable_scope(None, default_name="conv2d"):
        stddev = math.sqrt(2.0 / (kernel_size * kernel_size * c_in))  # He-normal scale keeps activations O(1)
        kernel = tf1.get_variable("kernel", [kernel_size, kernel_size, c_in, filters], initializer=tf1.random_normal_initializer(stddev=stddev))
    if strides > 1:
        beg = (kernel_size - 1) // 2
        end = kernel_size - 1 - beg
        x = tf.pad(x, [[0, 0], [beg, end], [beg, end], [0, 0]])
        return tf.nn.conv2d(x, kernel, strides, "VALID")
    return tf.nn.conv2d(x, kernel, 1, "SAME")


def _batch_norm(x: tf.Tensor, relu: bool, center: bool = True, small_gamma: bool = False) -> tf.Tensor:
    """Inference batch norm over the last axis with the moving statistics, then optionally ReLU.

    ``small_gamma`` stands for ``init_zero=True`` (the last BN of a block): a smaller random gamma keeps the
    residual sums of 16 blocks O(1).
    """
    c = int(x.shape[-1])
    with tf1.variable_scope(None, default_name="batch_normalization"):
        lo, hi = (0.1, 0.4) if small_gamma else (0.5, 1.5)
        gamma = tf1.get_variable("gamma", [c], initializer=tf1.random_uniform_initializer(lo, hi))
        beta = tf1.get_variable("beta", [c], initializer=tf1.random_normal_initializer(stddev=0.2)) if center else None
        mean = tf1.get_variable("moving_mean", [c], initializer=tf1.random_normal_initializer(stddev=0.3), trainable=False)
        var = tf1.get_variable("moving_variance", [c], initializer=tf1.random_uniform_initializer(0.3, 2.0), trainable=False)
    y = (x - mean) * tf.math.rsqrt(var + BN_EPSILON) * gamma
    if beta is not None:
        y = y + beta
    return tf.nn.relu(y) if relu else y


def tf_same_max_pool(x: tf.Tensor) -> tf.Tensor:
    """The stem max-pool of SimCLRv2: 3x3, stride 2, padding 'SAME' (extra padding at the bottom/right)."""
    return tf.nn.max_pool2d(x, 3, 2, "SAME")


def _bottleneck(x: tf.Tensor, filters: int, strides: int, projection: bool) -> tf.Tensor:
    """Shortcut (projection first when asked), then 1x1 -> 3x3 (stride) -> 1x1 x4; relu(branch + shortcut)."""
    shortcut = x
    if projection:
        shortcut = _conv2d_fixed_padding(x, 4 * filters, 1, strides)
        shortcut = _batch_norm(shortcut, relu=False)
    y = _batch_norm(_conv2d_fixed_padding(x, filters, 1, 1), relu=True)
    y = _batch_norm(_conv2d_fixed_padding(y, filters, 3, strides), relu=True)
    y = _batch_norm(_conv2d_fixed_padding(y, 4 * filters, 1, 1), relu=False, small_gamma=True)
    return tf.nn.relu(y + shortcut)


def _resnet(x: tf.Tensor, width: int, depth: int = 50) -> tf.Tensor:
    """Stem (7x7/2 conv, BN-ReLU, SAME max-pool) and four block groups: feature maps [B, h, w, 2048 width]."""
    x = _batch_norm(_conv2d_fixed_padding(x, 64 * width, 7, 2), relu=True)
    x = tf_same_max_pool(x)
    for group, n in enumerate(BLOCKS[depth]):
        filters = 64 * width * 2**group
        for k in range(n):
            x = _bottleneck(x, filters, (1 if group == 0 else 2) if k == 0 else 1, projection=k == 0)
    return x


def _projection_head(h: tf.Tensor, out_dim: int = 128, layers: int = 3) -> tf.Tensor:
    """``nl_j``: dense (no bias) + BN (beta only for the middle layers) + ReLU (middle layers): [B, 128]."""
    mid = int(h.shape[-1])
    for j in range(layers):
        last = j == layers - 1
        with tf1.variable_scope(f"nl_{j}"):
            with tf1.variable_scope(None, default_name="dense"):
                kernel = tf1.get_variable("kernel", [int(h.shape[-1]), out_dim if last else mid], initializer=tf1.random_normal_initializer(stddev=1.0 / math.sqrt(int(h.shape[-1]))))
            h = _batch_norm(tf.matmul(h, kernel), relu=not last, center=not last)
    return h


@dataclass
class TFModel:
    """Graph tensors of one model copy (``scope`` '' = trained weights, 'ema_model' = EMA weights)."""

    features: tf.Tensor  # [B, h, w, 2048 width] trunk output
    embedding: tf.Tensor  # [B, 128]


def _model(x: tf.Tensor, width: int) -> TFModel:
    with tf1.variable_scope("base_model"):
        features = _resnet(x, width)
    with tf1.variable_scope("head_contrastive"):
        z = _projection_head(tf.reduce_mean(features, [1, 2]))
    return TFModel(features, z)


@dataclass
class TFCheckpoint:
    """A written checkpoint and the TF outputs on the given inputs (NCHW numpy, as PyTorch takes them)."""

    prefix: Path  # <dir>/model.ckpt-250228
    names: dict[str, tuple[int, ...]]  # checkpoint variable -> shape
    outputs: dict[str, dict[str, np.ndarray]]  # input name -> {'features_ema', 'embedding_ema', 'embedding_plain', ...}


def write_checkpoint(directory: Path, width: int, inputs: dict[str, np.ndarray], seed: int = 0) -> TFCheckpoint:
    """Build the trained + EMA models, write ``model.ckpt-250228`` (TF1 Saver, V2 format) and run the inputs.

    ``inputs``: name -> images [B, 3, H, W] in [0, 1]; outputs are returned as [B, C, h, w] / [B, 128].
    """
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(seed)
        x = tf1.placeholder(tf.float32, [None, None, None, 3])
        plain = _model(x, width)
        with tf1.variable_scope("head_supervised"), tf1.variable_scope("linear_layer"), tf1.variable_scope("dense"):
            c = int(plain.features.shape[-1])
            tf1.get_variable("kernel", [c, 1000], initializer=tf1.random_normal_initializer(stddev=0.01))
            tf1.get_variable("bias", [1000], initializer=tf1.random_normal_initializer(stddev=0.01))
        with tf1.variable_scope("ema_model"):
            ema = _model(x, width)
        global_step = tf1.get_variable("global_step", [], tf.int64, initializer=tf1.constant_initializer(GLOBAL_STEP), trainable=False)
        variables = {v.op.name: v for v in tf1.global_variables()}
        # LARS momentum slots of the trained (not EMA) variables, as the optimizer leaves them
        for name, v in list(variables.items()):
            if v in tf1.trainable_variables() and not name.startswith("ema_model/"):
                slot = tf1.get_variable(f"slot_{len(variables)}", v.shape, initializer=tf1.random_normal_initializer(stddev=0.01), trainable=False)
                variables[f"{name}/Momentum"] = slot
        saver = tf1.train.Saver(var_list=variables, max_to_keep=None)
        threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        config = tf1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1 if threads else 0)
        with tf1.Session(graph=graph, config=config) as sess:
            sess.run(tf1.global_variables_initializer())
            directory.mkdir(parents=True, exist_ok=True)
            prefix = saver.save(sess, str(directory / "model.ckpt"), global_step=sess.run(global_step))
            outputs = {}
            for key, images in inputs.items():
                f_e, z_e, f_p, z_p = sess.run([ema.features, ema.embedding, plain.features, plain.embedding], {x: images.transpose(0, 2, 3, 1)})
                outputs[key] = {
                    "features_ema": f_e.transpose(0, 3, 1, 2),
                    "embedding_ema": z_e,
                    "features_plain": f_p.transpose(0, 3, 1, 2),
                    "embedding_plain": z_p,
                }
        names = {name: tuple(int(d) for d in v.shape) for name, v in variables.items()}
    return TFCheckpoint(Path(prefix), names, outputs)
