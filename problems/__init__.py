"""cvxkit.problems: the modeling front end. One module per problem family (see DESIGN.md)."""
from cvxkit.problems.barycenter import Barycenter
from cvxkit.problems.base import CheckReport, Problem
from cvxkit.problems.bilevel import Bilevel, DataHypercleaning, HyperparameterTuning
from cvxkit.problems.conic import LinearProgram, QuadraticProgram
from cvxkit.problems.conic_program import ConicProgram
from cvxkit.problems.convex_relu import ConvexReLU, ConvexReLUNet
from cvxkit.problems.finite_sum import FiniteSumMatrixGame
from cvxkit.problems.metric import CorrelationClustering, MetricNearness
from cvxkit.problems.net_trim import NetTrim, PrunedNetwork, mlp_activations, net_trim_network
from cvxkit.problems.nlp import NonlinearProgram
from cvxkit.problems.parametric_conic import ConicData, DualProxy, ParametricConicProgram
from cvxkit.problems.sparse_transport import SparsityConstrainedTransport
from cvxkit.problems.transport import (OnlineTransport, OptimalTransport, PointCloudTransport,
                                      TransportPolytopeProblem)

__all__ = ["Barycenter", "Bilevel", "CheckReport", "DataHypercleaning", "HyperparameterTuning", "ConvexReLU", "ConvexReLUNet", "ConicData", "ConicProgram", "CorrelationClustering", "DualProxy", "FiniteSumMatrixGame", "LinearProgram", "MetricNearness", "NetTrim", "NonlinearProgram", "OnlineTransport",
           "OptimalTransport", "ParametricConicProgram", "PointCloudTransport", "Problem", "PrunedNetwork", "QuadraticProgram", "SparsityConstrainedTransport",
           "TransportPolytopeProblem", "mlp_activations", "net_trim_network"]
