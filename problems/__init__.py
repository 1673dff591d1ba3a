"""cvxkit.problems: the modeling front end. One module per problem family (see DESIGN.md)."""
from cvxkit.problems.base import CheckReport, Problem
from cvxkit.problems.conic import QuadraticProgram
from cvxkit.problems.metric import CorrelationClustering, MetricNearness
from cvxkit.problems.nlp import NonlinearProgram
from cvxkit.problems.transport import OnlineTransport, OptimalTransport, TransportPolytopeProblem

__all__ = ["CheckReport", "CorrelationClustering", "MetricNearness", "NonlinearProgram", "OnlineTransport",
           "OptimalTransport", "Problem", "QuadraticProgram", "TransportPolytopeProblem"]
