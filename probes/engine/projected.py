"""Dense and recurrent layers run from their input projection instead of their input.

A layer whose input x (b, T, F) enters only through x @ kernel (Dense; the input matmul of an
LSTM, GRU or SimpleRNN cell) can be run from the projection P = x @ kernel (b, T, G). For a
one-hot x, P is a gather of kernel rows, exactly (a one-hot row times the kernel is that row
of the kernel in float32), and it skips ~80% of an LSTM's FLOPs at F = 4U. The functions here
mirror Keras 3's own code for each layer at inference (keras/src/layers/rnn/lstm.py, gru.py,
simple_rnn.py, rnn.py; the loop is Keras' backend `rnn`), with `inputs @ kernel` replaced by
the projection's step and every other operation in the same order, so the outputs equal the
layer's own to float32 rounding (bit for bit on the CPU kernels measured).
"""

from __future__ import annotations


def unsupported(layer) -> str | None:
    """Why `layer` cannot run from its input projection, or None when it can."""
    import keras

    kind = type(layer)
    name = f"{kind.__name__} {layer.name!r}"
    if kind not in (keras.layers.Dense, keras.layers.LSTM, keras.layers.GRU,
                    keras.layers.SimpleRNN):
        return f"{name} is not a Dense, LSTM, GRU or SimpleRNN layer"
    if layer.compute_dtype != "float32" or layer.variable_dtype != "float32":
        return f"{name} does not compute in float32"
    if kind is keras.layers.Dense:
        if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
            return f"{name} is quantized or has LoRA weights"
        return None
    if layer.stateful or layer.return_state:
        return f"{name} is stateful or returns its state"
    if kind is not keras.layers.SimpleRNN and layer.cell.implementation not in (1, 2):
        return f"{name} has an unknown implementation {layer.cell.implementation}"
    return None


def kernel(layer):
    """The (F, G) input kernel of a layer that `unsupported` accepts."""
    import keras

    return layer.kernel if isinstance(layer, keras.layers.Dense) else layer.cell.kernel


def run(layer, projection):
    """The output of `layer` called (inference) on x, given projection = x @ kernel(layer).

    Args:
        layer: a layer that `unsupported` accepts (or its linear-activation copy).
        projection: (b, T, G) float32 for recurrent layers, (b, ..., G) for Dense.
    Returns:
        The layer's output: (b, ..., units) for Dense; (b, units) or, with return_sequences,
        (b, T, units) for recurrent layers.
    """
    import keras
    from keras import ops

    if isinstance(layer, keras.layers.Dense):
        x = projection  # Dense.call: matmul, + bias, activation
        if layer.bias is not None:
            x = ops.add(x, layer.bias)
        if layer.activation is not None:
            x = layer.activation(x)
        return x
    return _recurrent(layer, projection)


def _recurrent(layer, projection):
    """RNN.call + RNN.inner_loop at inference, stepping over projected inputs."""
    from keras import ops, tree
    from keras.src import backend

    cell = layer.cell
    state = layer.get_initial_state(batch_size=ops.shape(projection)[0])
    if not tree.is_nested(state):
        state = [state]
    state = tree.map_structure(
        lambda x: backend.convert_to_tensor(x, dtype=cell.compute_dtype), list(state))
    if type(cell).__name__ == "GRUCell":
        state = [state[0]]  # GRU.inner_loop keeps the one state as a list of one
    step = {"LSTMCell": _lstm_step, "GRUCell": _gru_step,
            "SimpleRNNCell": _simple_step}[type(cell).__name__](cell)
    last, outputs, _ = backend.rnn(step, projection, state, go_backwards=layer.go_backwards,
                                   mask=None, unroll=layer.unroll,
                                   input_length=projection.shape[1],
                                   zero_output_for_mask=layer.zero_output_for_mask,
                                   return_all_outputs=layer.return_sequences)
    out = outputs if layer.return_sequences else last
    return ops.cast(out, layer.compute_dtype)


def _lstm_step(cell):
    """LSTMCell.call (training=False) with x_t @ kernel given as p (b, 4U)."""
    from keras import ops

    def step(p, states):
        h_tm1, c_tm1 = states[0], states[1]
        if cell.implementation == 1:
            x = list(ops.split(p, 4, axis=1))  # x_i, x_f, x_c, x_o
            if cell.use_bias:
                biases = ops.split(cell.bias, 4, axis=0)
                x = [xi + bi for xi, bi in zip(x, biases)]
            c, o = cell._compute_carry_and_output(tuple(x), (h_tm1,) * 4, c_tm1)
        else:
            z = ops.add(p, ops.matmul(h_tm1, cell.recurrent_kernel))
            if cell.use_bias:
                z = ops.add(z, cell.bias)
            c, o = cell._compute_carry_and_output_fused(ops.split(z, 4, axis=1), c_tm1)
        h = o * cell.activation(c)
        return h, [h, c]

    return step


def _gru_step(cell):
    """GRUCell.call (training=False) with x_t @ kernel given as p (b, 3U)."""
    from keras import ops

    from probes.engine.recurrent_grads import gru_biases, gru_forward

    units = cell.units

    def step(p, states):
        h_tm1 = states[0]
        if cell.implementation != 1:  # implementation 2: written out once, with its backward
            h = gru_forward(cell, p, h_tm1)[0]
            return h, [h]
        input_bias, recurrent_bias = gru_biases(cell)
        kernel_r = cell.recurrent_kernel
        x_z, x_r, x_h = p[:, :units], p[:, units:units * 2], p[:, units * 2:]
        if cell.use_bias:
            x_z += input_bias[:units]
            x_r += input_bias[units:units * 2]
            x_h += input_bias[units * 2:]
        recurrent_z = ops.matmul(h_tm1, kernel_r[:, :units])
        recurrent_r = ops.matmul(h_tm1, kernel_r[:, units:units * 2])
        if cell.reset_after and cell.use_bias:
            recurrent_z += recurrent_bias[:units]
            recurrent_r += recurrent_bias[units:units * 2]
        z = cell.recurrent_activation(x_z + recurrent_z)
        r = cell.recurrent_activation(x_r + recurrent_r)
        if cell.reset_after:
            recurrent_h = ops.matmul(h_tm1, kernel_r[:, units * 2:])
            if cell.use_bias:
                recurrent_h += recurrent_bias[units * 2:]
            recurrent_h = r * recurrent_h
        else:
            recurrent_h = ops.matmul(r * h_tm1, kernel_r[:, units * 2:])
        hh = cell.activation(x_h + recurrent_h)
        h = z * h_tm1 + (1 - z) * hh
        return h, [h]

    return step


def _simple_step(cell):
    """SimpleRNNCell.call (training=False) with x_t @ kernel given as p (b, U)."""
    from keras import ops

    def step(p, states):
        prev_output = states[0]
        h = p
        if cell.bias is not None:
            h = ops.add(h, cell.bias)
        output = h + ops.matmul(prev_output, cell.recurrent_kernel)
        if cell.activation is not None:
            output = cell.activation(output)
        return output, [output]

    return step
