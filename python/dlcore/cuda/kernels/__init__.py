"""The GPU op kernels with the CPU ``_C`` functions' names, signatures and return conventions,
taking and returning CudaArrays; ``dlcore.ops._util.lib`` picks this module or ``_C`` by the
arrays' device. One module per kernel family, each over its csrc/cuda/<family>.cu."""
from dlcore.cuda.kernels.conv import conv2d_backward_input, conv2d_backward_weight, conv2d_forward
from dlcore.cuda.kernels.elementwise import (binary_forward, compare_forward, unary_backward, unary_forward,
                                             where_forward)
from dlcore.cuda.kernels.gemm import gemm
from dlcore.cuda.kernels.nn import (dropout_backward, dropout_forward, embedding_backward, embedding_forward,
                                    index_add, lstm_cell_backward, lstm_cell_forward, take)
from dlcore.cuda.kernels.optim import adam_step, sgd_step
from dlcore.cuda.kernels.pool import (avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward,
                                      max_pool2d_forward)
from dlcore.cuda.kernels.reduce import (cross_entropy_backward, cross_entropy_forward, nll_loss_backward,
                                        nll_loss_forward, reduce_forward, reduce_max_backward, softmax_backward,
                                        softmax_forward)
from dlcore.cuda.kernels.rnn import (gru_sequence_backward, gru_sequence_forward, lstm_sequence_backward,
                                     lstm_sequence_forward, rnn_sequence_backward, rnn_sequence_forward)
