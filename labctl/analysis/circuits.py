"""Equivalent circuits written in impedance.py's string syntax, parsed once into a fast model.

Syntax (as impedance.py reads it): elements in series are joined by ``-``; ``p(a,b,...)`` puts two or more
branches in parallel; both nest (``R0-p(R1-Wo1,C1)``). An element is a type followed by digits and underscores
that make its name unique in the circuit: ``R0``, ``CPE1``, ``CPE_2``. Spaces are ignored.

Element types (ω = 2πf in rad/s; Z = Z' + jZ'' with Z'' < 0 for capacitive behaviour, as in impedance.py):

======  =========================================  ===========================================================
type    parameters (result-key suffix)             impedance
======  =========================================  ===========================================================
R       R, ohm (``_ohm``)                          Z = R
C       C, F (``_F``)                              Z = 1/(jωC)
L       L, H (``_H``)                              Z = jωL
CPE     Q, F·s^(α−1) (``_Q``); α (``_alpha``)      Z = 1/(Q·(jω)^α), 0 ≤ α ≤ 1
W       A_W, ohm·s^−1/2 (``_A_W``)                 Z = A_W·(1 − j)/√ω  (semi-infinite Warburg)
Wo      Z0, ohm (``_Z0_ohm``); τ, s (``_tau_s``)   Z = Z0·coth(√(jωτ))/√(jωτ)  (finite space: the tail turns capacitive)
Ws      Z0, ohm (``_Z0_ohm``); τ, s (``_tau_s``)   Z = Z0·tanh(√(jωτ))/√(jωτ)  (finite length: ends on the axis at Z0)
======  =========================================  ===========================================================

Parameters are ordered as impedance.py orders them (elements left to right, an element's parameters in the
order above), so a parameter vector means the same thing to both. A :class:`Circuit` evaluates Z(ω) and its
analytic Jacobian dZ/dp vectorised over frequency; the fitter in :mod:`labctl.analysis.eis` relies on both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["ELEMENT_TYPES", "Circuit", "Element", "Omega", "Parallel", "ParameterSpec", "Series", "parse_circuit"]

Derivatives = tuple[np.ndarray, ...]
ImpedanceFunction = Callable[..., tuple[np.ndarray, Derivatives]]


class Omega:
    """Angular frequencies ω = 2πf (rad/s) and the functions of ω the elements need, computed once per sweep."""

    def __init__(self, frequency_Hz: np.ndarray | Sequence[float]):
        self.w = 2 * np.pi * np.asarray(frequency_Hz, dtype=float)
        self.jw = 1j * self.w
        self.log_jw = np.log(self.w) + 0.5j * np.pi  # ln(jω), so (jω)^α = exp(α ln jω)
        self.warburg = (1 - 1j) / np.sqrt(self.w)
        self.sqrt_jw = np.sqrt(self.jw)


def _resistor(om: Omega, r: float) -> tuple[complex, tuple[float]]:
    return complex(r), (1.0,)  # scalars: numpy broadcasts them over frequency


def _capacitor(om: Omega, c: float) -> tuple[np.ndarray, Derivatives]:
    z = 1.0 / (om.jw * c)
    return z, (-z / c,)


def _inductor(om: Omega, inductance: float) -> tuple[np.ndarray, Derivatives]:
    return om.jw * inductance, (om.jw,)


def _cpe(om: Omega, q: float, alpha: float) -> tuple[np.ndarray, Derivatives]:
    z = np.exp(-alpha * om.log_jw) / q
    return z, (-z / q, -z * om.log_jw)


def _warburg(om: Omega, a_w: float) -> tuple[np.ndarray, Derivatives]:
    return a_w * om.warburg, (om.warburg,)


def _tanh(s: np.ndarray) -> np.ndarray:
    """tanh for Re(s) >= 0 without overflow at large |s| (numpy's complex tanh overflows there)."""
    e = np.exp(-2 * s)
    return (1 - e) / (1 + e)


def _warburg_open(om: Omega, z0: float, tau: float) -> tuple[np.ndarray, Derivatives]:
    s = om.sqrt_jw * np.sqrt(tau)
    coth = 1 / _tanh(s)
    z = z0 * coth / s
    return z, (z / z0, z0 / (2 * tau) * (1 - coth**2 - coth / s))  # d/dτ via ds/dτ = s/(2τ)


def _warburg_short(om: Omega, z0: float, tau: float) -> tuple[np.ndarray, Derivatives]:
    s = om.sqrt_jw * np.sqrt(tau)
    t = _tanh(s)
    z = z0 * t / s
    return z, (z / z0, z0 / (2 * tau) * (1 - t**2 - t / s))


@dataclass(frozen=True)
class ElementType:
    """One kind of circuit element: its parameters (symbol, unit, key suffix) and Z with dZ/dp."""

    symbols: tuple[str, ...]
    units: tuple[str, ...]
    suffixes: tuple[str, ...]
    impedance: ImpedanceFunction
    role: str  # "resistor", "capacitive", "inductive" or "diffusion": decides its resistance limits


ELEMENT_TYPES: dict[str, ElementType] = {
    "R": ElementType(("R",), ("ohm",), ("ohm",), _resistor, "resistor"),
    "C": ElementType(("C",), ("F",), ("F",), _capacitor, "capacitive"),
    "L": ElementType(("L",), ("H",), ("H",), _inductor, "inductive"),
    "CPE": ElementType(("Q", "alpha"), ("F*s^(alpha-1)", "1"), ("Q", "alpha"), _cpe, "capacitive"),
    "W": ElementType(("A_W",), ("ohm*s^-1/2",), ("A_W",), _warburg, "diffusion"),
    "Wo": ElementType(("Z0", "tau"), ("ohm", "s"), ("Z0_ohm", "tau_s"), _warburg_open, "diffusion"),
    "Ws": ElementType(("Z0", "tau"), ("ohm", "s"), ("Z0_ohm", "tau_s"), _warburg_short, "diffusion"),
}
FRACTIONS = {"alpha"}  # parameters in [0, 1]; all others are positive


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter of a circuit: ``key`` names it in results (``CPE1_Q``), ``impedance_name`` as
    impedance.py does (``CPE1_0``)."""

    element: str
    kind: str
    symbol: str
    unit: str
    key: str
    impedance_name: str
    fraction: bool  # lies in [0, 1] (CPE α); otherwise positive


class Element:
    """One element of a circuit; its parameters are ``p[start:stop]`` of the circuit's vector."""

    __slots__ = ("kind", "name", "start", "stop", "type")

    def __init__(self, name: str, kind: str, start: int):
        self.name, self.kind, self.type = name, kind, ELEMENT_TYPES[kind]
        self.start, self.stop = start, start + len(self.type.symbols)

    def __repr__(self) -> str:
        return f"Element({self.name!r})"

    def evaluate(self, om: Omega, p: np.ndarray, jac: np.ndarray | None) -> np.ndarray:
        z, derivatives = self.type.impedance(om, *p[self.start:self.stop])
        if jac is not None:
            jac[self.start:self.stop] = derivatives
        return z

    def limit(self, p: np.ndarray, high: bool) -> float:
        """Its resistance as ω → ∞ (``high``) or ω → 0; inductors and diffusion elements count as 0 (cabling
        and the diffusion tail are not part of R_b or R_tot), capacitive elements as open at ω → 0."""
        role = self.type.role
        if role == "resistor":
            return float(p[self.start])
        if role == "capacitive" and not high:
            return np.inf
        return 0.0

    def elements(self) -> Iterator[Element]:
        yield self


@dataclass(frozen=True)
class Series:
    """Elements and parallel groups in series: Z = Σ Z_i."""

    items: tuple[Element | Parallel, ...]

    def evaluate(self, om: Omega, p: np.ndarray, jac: np.ndarray | None) -> np.ndarray:
        z = self.items[0].evaluate(om, p, jac)
        for item in self.items[1:]:
            z = z + item.evaluate(om, p, jac)
        return z

    def limit(self, p: np.ndarray, high: bool) -> float:
        return float(sum(item.limit(p, high) for item in self.items))

    def elements(self) -> Iterator[Element]:
        for item in self.items:
            yield from item.elements()


@dataclass(frozen=True)
class Parallel:
    """Branches in parallel, 1/Z = Σ 1/Z_i; its parameters are ``p[start:stop]``."""

    branches: tuple[Element | Series | Parallel, ...]
    start: int
    stop: int

    def evaluate(self, om: Omega, p: np.ndarray, jac: np.ndarray | None) -> np.ndarray:
        parts = [branch.evaluate(om, p, jac) for branch in self.branches]
        z = 1.0 / sum(1.0 / part for part in parts)
        if jac is not None:  # dZ/dp = (Z/Z_i)² dZ_i/dp for a parameter of branch i
            for branch, part in zip(self.branches, parts, strict=True):
                first, last = _span(branch)
                jac[first:last] *= (z / part) ** 2
        return z

    def limit(self, p: np.ndarray, high: bool) -> float:
        conductance = 0.0
        for branch in self.branches:
            r = branch.limit(p, high)
            if r == 0:
                return 0.0
            conductance += 1.0 / r  # an open branch (inf) adds nothing
        return 1.0 / conductance if conductance else np.inf

    def elements(self) -> Iterator[Element]:
        for branch in self.branches:
            yield from branch.elements()


Node = Element | Series | Parallel


def _span(node: Node) -> tuple[int, int]:
    if isinstance(node, Series):
        return _span(node.items[0])[0], _span(node.items[-1])[1]
    return node.start, node.stop


class Circuit:
    """A parsed circuit: ``impedance(f, p)``, ``impedance_and_jacobian(f, p)`` and its parameter list.

    Build it with :func:`parse_circuit` (cached), e.g. ``parse_circuit("R0-p(R1,CPE1)-W1")``.
    """

    def __init__(self, text: str, root: Node):
        self.text = text
        self.root = root
        self.elements: tuple[Element, ...] = tuple(root.elements())
        self.parameters: tuple[ParameterSpec, ...] = tuple(
            ParameterSpec(e.name, e.kind, symbol, unit, f"{e.name}_{suffix}",
                          e.name if len(e.type.symbols) == 1 else f"{e.name}_{i}", symbol in FRACTIONS)
            for e in self.elements
            for i, (symbol, unit, suffix) in enumerate(zip(e.type.symbols, e.type.units, e.type.suffixes,
                                                           strict=True)))

    def __repr__(self) -> str:
        return f"parse_circuit({self.text!r})"

    @property
    def keys(self) -> tuple[str, ...]:
        """Result names of the parameters, in vector order (``R0_ohm``, ``CPE1_Q``, ``CPE1_alpha`` …)."""
        return tuple(spec.key for spec in self.parameters)

    @property
    def terms(self) -> tuple[Node, ...]:
        """The top-level series terms (one term if the circuit is a single element or parallel group)."""
        return self.root.items if isinstance(self.root, Series) else (self.root,)

    def impedance(self, frequency_Hz: np.ndarray | Sequence[float] | Omega,
                  parameters: Sequence[float]) -> np.ndarray:
        """Z (ohm, complex) at each frequency (Hz, or an :class:`Omega` to reuse) for the parameter vector
        (see :attr:`keys`)."""
        om, p = self._inputs(frequency_Hz, parameters)
        return _per_frequency(self.root.evaluate(om, p, None), om)

    def impedance_and_jacobian(self, frequency_Hz: np.ndarray | Sequence[float] | Omega,
                               parameters: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Z (shape n) and dZ/dp (complex, shape (number of parameters, n))."""
        om, p = self._inputs(frequency_Hz, parameters)
        jac = np.empty((len(p), len(om.w)), dtype=complex)
        return _per_frequency(self.root.evaluate(om, p, jac), om), jac

    def in_frequency_order(self, parameters: Sequence[float]) -> np.ndarray:
        """The same circuit with interchangeable top-level parallel groups (same structure, e.g. two
        ``p(R,CPE)``) relabelled so that their apex frequencies fall in the written order: the fitted
        ``R0-p(R1,CPE1)-p(R2,CPE2)`` then has its high-frequency arc in group 1 whichever way the fit found it."""
        p = np.array(parameters, dtype=float)
        groups = [t for t in self.terms if isinstance(t, Parallel)]
        for shape in {_shape(g) for g in groups}:
            same = [g for g in groups if _shape(g) == shape]
            blocks = [p[g.start:g.stop].copy() for g in same]
            apexes = [_apex_Hz(g, p) for g in same]
            for g, k in zip(same, np.argsort(apexes)[::-1], strict=True):
                p[g.start:g.stop] = blocks[k]
        return p

    def resistances(self, parameters: Sequence[float]) -> tuple[float, float]:
        """(R at ω → ∞, R at ω → 0) of the circuit without its inductors and diffusion elements, ohm: for
        ``R0-p(R1,CPE1)-p(R2,CPE2)-W1`` that is (R0, R0 + R1 + R2)."""
        p = np.asarray(parameters, dtype=float)
        return self.root.limit(p, True), self.root.limit(p, False)

    def _inputs(self, frequency_Hz, parameters) -> tuple[Omega, np.ndarray]:
        p = np.asarray(parameters, dtype=float)
        if p.shape != (len(self.parameters),):
            raise ValueError(f"circuit {self.text!r} takes {len(self.parameters)} parameters "
                             f"({', '.join(self.keys)}), got {p.size}")
        return (frequency_Hz if isinstance(frequency_Hz, Omega) else Omega(frequency_Hz)), p


def _per_frequency(z: np.ndarray | complex, om: Omega) -> np.ndarray:
    """Z as an array over frequency (a circuit of resistors alone evaluates to a scalar)."""
    return z if np.ndim(z) else np.full(om.w.shape, z, dtype=complex)


_APEX_GRID = Omega(np.logspace(-6, 10, 321))  # Hz: where to look for a group's apex


def _shape(node: Node) -> str:
    """The structure of a node without element numbers: ``p(R,CPE)``."""
    if isinstance(node, Element):
        return node.kind
    if isinstance(node, Series):
        return "-".join(_shape(item) for item in node.items)
    return "p(" + ",".join(_shape(branch) for branch in node.branches) + ")"


def _apex_Hz(node: Node, p: np.ndarray) -> float:
    """Frequency of the maximum of −Z'' of one node on a grid from 1 µHz to 10 GHz."""
    minus_im = -np.imag(node.evaluate(_APEX_GRID, p, None))
    return float(_APEX_GRID.w[np.argmax(minus_im)] / (2 * np.pi))


_NAME = re.compile(r"([A-Za-z]+)([0-9_]*)")


class _Parser:
    """Recursive descent: series := term ('-' term)*; term := 'p(' series (',' series)+ ')' | element."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.count = 0  # parameters allocated so far
        self.names: set[str] = set()

    def parse(self) -> Node:
        node = self.series()
        if self.peek():
            self.fail(f"unexpected {self.peek()!r}", "join elements with '-' and branches inside p(...) with ','")
        return node

    def fail(self, problem: str, fix: str) -> None:
        raise ValueError(f"circuit {self.text!r}: {problem} at position {self.pos}; {fix}")

    def peek(self) -> str:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def series(self) -> Node:
        items = [self.term()]
        while self.peek() == "-":
            self.pos += 1
            items.append(self.term())
        flat: list[Node] = []
        for item in items:
            flat.extend(item.items if isinstance(item, Series) else (item,))
        return flat[0] if len(flat) == 1 else Series(tuple(flat))

    def term(self) -> Node:
        if self.peek() == "p" and self.text[self.pos + 1:].lstrip().startswith("("):
            return self.parallel()
        return self.element()

    def parallel(self) -> Parallel:
        start = self.count
        self.pos = self.text.index("(", self.pos) + 1
        branches = [self.series()]
        while self.peek() == ",":
            self.pos += 1
            branches.append(self.series())
        if self.peek() != ")":
            self.fail("expected ',' or ')'" if self.peek() else "missing ')'", "close every p( with ')'")
        if len(branches) < 2:
            self.fail("p(...) with a single branch", "give p(...) at least two branches separated by ','")
        self.pos += 1
        return Parallel(tuple(branches), start, self.count)

    def element(self) -> Element:
        where = self.pos
        match = _NAME.match(self.text, self.pos) if self.peek() else None
        if not match:
            found = repr(self.peek()) if self.peek() else "the end of the string"
            self.fail(f"expected an element, found {found}", "write elements such as R0, CPE1 or W1")
        kind, name = match.group(1), match.group(0)
        if kind not in ELEMENT_TYPES:
            hint = next((k for k in ELEMENT_TYPES if k.lower() == kind.lower()), None)
            raise ValueError(f"circuit {self.text!r}: unknown element {kind!r} ({name}) at position {where}; "
                             + (f"did you mean {hint!r}? " if hint else "")
                             + f"known elements: {', '.join(ELEMENT_TYPES)}")
        if name in self.names:
            raise ValueError(f"circuit {self.text!r}: element name {name!r} at position {where} is used twice; "
                             "number elements so that each name is unique (R0, R1 …)")
        self.names.add(name)
        self.pos = match.end()
        element = Element(name, kind, self.count)
        self.count = element.stop
        return element


@lru_cache(maxsize=64)
def parse_circuit(text: str) -> Circuit:
    """Parse a circuit string (impedance.py syntax, e.g. ``"R0-p(R1,CPE1)-W1"``) into a :class:`Circuit`.

    Raises ValueError naming the position of a syntax error, an unknown element or a repeated name."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"circuit must be a non-empty string such as 'R0-p(R1,CPE1)-W1', got {text!r}")
    return Circuit(text, _Parser(text).parse())
