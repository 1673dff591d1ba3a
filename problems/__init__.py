"""cvxkit.problems: the modeling front end. One module per problem family (see DESIGN.md)."""
from cvxkit.problems.base import CheckReport, Problem
from cvxkit.problems.transport import OnlineTransport, OptimalTransport, TransportPolytopeProblem

__all__ = ["CheckReport", "OnlineTransport", "OptimalTransport", "Problem", "TransportPolytopeProblem"]
