"""Recurrent layers run from their input projection with their backward pass written out.

For the one-hot path (probes.engine.onehot_grads) the gradient of every score row is needed at the
projection P = x @ kernel of each time step, averaged over the path nodes. Autodiff through
the layer's while loop runs one backward loop per score row, computes the recurrent kernel's
gradient nobody asked for and stores every intermediate of every step; here the forward loop
(the layer's own inference step, operation for operation as Keras 3 writes it, so the outputs
are bit for bit those of probes.engine.projected) stores a few derivative factors per step, and one
backward loop carries the cotangents of all score rows at once (stacked on a leading axis),
averaging each step's gradient over the nodes as it goes. Covered: implementation 2 (Keras'
default) of LSTM and GRU (reset_after either way) with tanh and sigmoid activations, and
SimpleRNN with tanh; anything else uses autodiff (probes.engine.projected).

Gradient formulas (y = sigmoid: y' = y (1 - y); y = tanh: y' = 1 - y^2), per step, with dh
and dc the cotangents of the step's outputs:
  LSTM: c = f c_ + i g, h = o tanh(c): dct = dc + dh o (1 - tanh(c)^2), dz = (dct g i',
        dct c_ f', dct i g', dh tanh(c) o'), dc_ = dct f, dh_ = dz @ U^T.
  GRU (reset after): h = z h_ + (1 - z) hh, hh = tanh(x_h + r rh), rh = (h_ @ U)_h + b_h:
        dx = dh (Fz, Fh Fr, Fh), dinner = dh (Fz, Fh Fr, Fh r), dh_ = dh z + dinner @ U^T with
        Fz = (h_ - hh) z', Fh = (1 - z) hh', Fr = rh r'.
  GRU (reset before): hh = tanh(x_h + (r h_) @ U_h): d(r h_) = dh Fh @ U_h^T, dx = (dh Fz,
        d(r h_) h_ r', dh Fh), dh_ = dh z + d(r h_) r + (dx_z, dx_r) @ U_zr^T.
  SimpleRNN: h = tanh(p + b + h_ @ U): dp = dh h', dh_ = dp @ U^T.
"""

from __future__ import annotations


def supported(layer) -> bool:
    """Whether `layer` (accepted by probes.engine.projected.unsupported) has its backward here."""
    import keras

    acts = keras.activations
    kind = type(layer)
    if kind is keras.layers.SimpleRNN:
        return layer.cell.activation is acts.tanh
    if kind not in (keras.layers.LSTM, keras.layers.GRU):
        return False
    cell = layer.cell
    return (cell.implementation == 2 and cell.activation is acts.tanh
            and cell.recurrent_activation is acts.sigmoid)


def forward(layer, projection):
    """The layer's output from projection (rows, T, G), and what `backward` needs.

    Returns:
        (output: (rows, units) or, with return_sequences, (rows, T, units) in the order the
        steps ran (reversed with go_backwards, as Keras returns it); saved: (T, rows, S)
        derivative factors per step, in the order the steps ran).
    """
    import tensorflow as tf

    cell = layer.cell
    steps = tf.transpose(projection, [1, 0, 2])  # (T, rows, G), time-major like Keras' loop
    if layer.go_backwards:
        steps = tf.reverse(steps, [0])
    t = tf.shape(steps)[0]
    rows = tf.shape(steps)[1]
    step = {"LSTMCell": _lstm, "GRUCell": _gru, "SimpleRNNCell": _simple}[type(cell).__name__]
    zeros = tf.zeros(tf.stack([rows, cell.units]), steps.dtype)
    states = [zeros, zeros] if type(cell).__name__ == "LSTMCell" else [zeros]

    def body(j, states, outs, saved):
        h, new, factors = step(cell, steps[j], states)
        return j + 1, new, outs.write(j, h), saved.write(j, factors)

    _, states, outs, saved = tf.while_loop(
        lambda j, *_: j < t, body,
        (0, states, tf.TensorArray(steps.dtype, t), tf.TensorArray(steps.dtype, t)))
    out = (tf.transpose(outs.stack(), [1, 0, 2]) if layer.return_sequences else states[0])
    return out, saved.stack()


def backward(layer, saved, d_output, b, k, weights):
    """(R, b, T, G) the node-weighted sum of d score / d P for every score row.

    Args:
        saved: `forward`'s (T, b * k, S); d_output: (R, b * k, units), or (R, b * k, T,
            units) with return_sequences, the cotangents of the layer's output per score row;
        b, k: samples and path nodes (rows are sample-major); weights: (k,) node weights.
    """
    import tensorflow as tf

    cell = layer.cell
    kind = type(cell).__name__
    recurrent = tf.convert_to_tensor(cell.recurrent_kernel)
    t = tf.shape(saved)[0]
    r = tf.shape(d_output)[0]
    units = cell.units
    last = d_output if not layer.return_sequences else tf.zeros_like(d_output[:, :, 0])
    carries = [last, tf.zeros_like(last)] if kind == "LSTMCell" else [last]
    width = recurrent.shape[1]  # G
    node_weights = tf.reshape(weights, [1, 1, -1])  # batched over R * b samples

    def body(j, carries, out):
        dh = carries[0]
        if layer.return_sequences:
            dh = dh + d_output[:, :, j]
        factors = saved[j]
        if kind == "LSTMCell":
            g4, a, f = tf.split(factors, [4 * units, units, units], axis=1)
            dct = carries[1] + dh * a
            dz = tf.concat([dct, dct, dct, dh], axis=2) * g4  # (R, rows, 4U)
            new = [_times(dz, recurrent, transpose=True), dct * f]
        elif kind == "GRUCell" and cell.reset_after:
            gx, gi, z = tf.split(factors, [3 * units, 3 * units, units], axis=1)
            dh3 = tf.concat([dh, dh, dh], axis=2)
            dz = dh3 * gx
            new = [dh * z + _times(dh3 * gi, recurrent, transpose=True)]
        elif kind == "GRUCell":
            fz, fh, fr, z, rr = tf.split(factors, [units] * 5, axis=1)
            d_rh = _times(dh * fh, recurrent[:, 2 * units:], transpose=True)
            dz = tf.concat([dh * fz, d_rh * fr, dh * fh], axis=2)
            new = [dh * z + d_rh * rr + _times(dz[:, :, :2 * units],
                                               recurrent[:, :2 * units], transpose=True)]
        else:  # SimpleRNN
            dz = dh * factors
            new = [_times(dz, recurrent, transpose=True)]
        per_sample = tf.reshape(dz, tf.stack([r * b, k, width]))
        averaged = tf.matmul(node_weights, per_sample)  # (R * b, 1, G): no transpose
        return j - 1, new, out.write(j, tf.reshape(averaged, tf.stack([r, b, width])))

    _, _, out = tf.while_loop(lambda j, *_: j >= 0, body,
                              (t - 1, carries, tf.TensorArray(saved.dtype, t)))
    gbar = out.stack()  # (T, R, b, G) in the order the steps ran
    if layer.go_backwards:
        gbar = tf.reverse(gbar, [0])
    return tf.transpose(gbar, [1, 2, 0, 3])


def _times(x, matrix, transpose=False):
    """(R, rows, n) @ matrix (or its transpose) as one (R * rows, n) product."""
    import tensorflow as tf

    shape = tf.shape(x)
    flat = tf.matmul(tf.reshape(x, [-1, shape[2]]), matrix, transpose_b=transpose)
    out = tf.reshape(flat, tf.concat([shape[:2], [-1]], 0))
    out.set_shape(x.shape[:2].concatenate([flat.shape[1]]))  # a loop carry keeps its shape
    return out


def _lstm(cell, p, states):
    """LSTMCell.call (implementation 2, training=False) from p = x_t @ kernel, and the
    factors [g i', c_ f', i g', tanh(c) o', o tanh'(c), f] (rows, 6U)."""
    from keras import ops

    h_tm1, c_tm1 = states
    z = ops.add(p, ops.matmul(h_tm1, cell.recurrent_kernel))
    if cell.use_bias:
        z = ops.add(z, cell.bias)
    z0, z1, z2, z3 = ops.split(z, 4, axis=1)
    i = cell.recurrent_activation(z0)  # _compute_carry_and_output_fused, inlined
    f = cell.recurrent_activation(z1)
    g = cell.activation(z2)
    c = f * c_tm1 + i * g
    o = cell.recurrent_activation(z3)
    tc = cell.activation(c)
    h = o * tc
    factors = ops.concatenate([g * (i * (1 - i)), c_tm1 * (f * (1 - f)), i * (1 - g * g),
                               tc * (o * (1 - o)), o * (1 - tc * tc), f], axis=1)
    return h, [h, c], factors


def gru_biases(cell):
    """(input bias, recurrent bias) of a GRUCell, as its call splits them (None for none)."""
    from keras import ops

    if not cell.use_bias:
        return None, None
    if not cell.reset_after:
        return cell.bias, None
    return tuple(ops.squeeze(e, axis=0) for e in ops.split(cell.bias, cell.bias.shape[0], axis=0))


def gru_forward(cell, p, h_tm1):
    """GRUCell.call's implementation 2 (training=False) from p = x_t @ kernel (b, 3U):
    (h, hh, z, r, matrix_inner), the new state and what its derivative factors need."""
    from keras import ops

    units = cell.units
    input_bias, recurrent_bias = gru_biases(cell)
    matrix_x = p
    if cell.use_bias:
        matrix_x = ops.add(matrix_x, input_bias)
    x_z, x_r, x_h = ops.split(matrix_x, 3, axis=-1)
    if cell.reset_after:
        matrix_inner = ops.matmul(h_tm1, cell.recurrent_kernel)
        if cell.use_bias:
            matrix_inner += recurrent_bias
    else:
        matrix_inner = ops.matmul(h_tm1, cell.recurrent_kernel[:, :2 * units])
    recurrent_z = matrix_inner[:, :units]
    recurrent_r = matrix_inner[:, units:units * 2]
    recurrent_h = matrix_inner[:, units * 2:]
    z = cell.recurrent_activation(x_z + recurrent_z)
    r = cell.recurrent_activation(x_r + recurrent_r)
    if cell.reset_after:
        recurrent_h = r * recurrent_h
    else:
        recurrent_h = ops.matmul(r * h_tm1, cell.recurrent_kernel[:, 2 * units:])
    hh = cell.activation(x_h + recurrent_h)
    h = z * h_tm1 + (1 - z) * hh
    return h, hh, z, r, matrix_inner


def _gru(cell, p, states):
    """GRUCell.call (implementation 2, training=False) from p = x_t @ kernel, and its
    factors ([Fz, Fh Fr, Fh, Fz, Fh Fr, Fh r, z] after, [Fz, Fh, h_ r', z, r] before)."""
    from keras import ops

    units = cell.units
    h_tm1 = states[0]
    h, hh, z, r, matrix_inner = gru_forward(cell, p, h_tm1)
    fz = (h_tm1 - hh) * (z * (1 - z))
    fh = (1 - z) * (1 - hh * hh)
    if cell.reset_after:
        fr = fh * (matrix_inner[:, units * 2:] * (r * (1 - r)))
        factors = ops.concatenate([fz, fr, fh, fz, fr, fh * r, z], axis=1)
    else:
        factors = ops.concatenate([fz, fh, h_tm1 * (r * (1 - r)), z, r], axis=1)
    return h, [h], factors


def _simple(cell, p, states):
    """SimpleRNNCell.call (training=False) from p = x_t @ kernel, and tanh'(output)."""
    from keras import ops

    h = p
    if cell.bias is not None:
        h = ops.add(h, cell.bias)
    output = h + ops.matmul(states[0], cell.recurrent_kernel)
    output = cell.activation(output)
    return output, [output], 1 - output * output
