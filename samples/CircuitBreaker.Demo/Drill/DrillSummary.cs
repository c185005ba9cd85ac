using CircuitBreaker.Demo.Downstream;
using CircuitBreaker.Http;

namespace CircuitBreaker.Demo.Drill;

/// <summary>The outcome of a drill: per host numbers and the drill's checks of its own invariants.</summary>
/// <param name="Scenario">The scenario's name.</param>
/// <param name="Elapsed">How long the drill ran, settling included.</param>
/// <param name="Interrupted">Whether Ctrl+C cut it short.</param>
/// <param name="Hosts">One entry per service.</param>
/// <param name="Checks">The invariants, each passed or not.</param>
public sealed record DrillSummary(string Scenario, TimeSpan Elapsed, bool Interrupted, IReadOnlyList<HostSummary> Hosts, IReadOnlyList<DrillCheck> Checks)
{
    /// <summary>Gets whether every check passed.</summary>
    public bool Passed => Checks.All(c => c.Passed);

    /// <summary>The entry of one service.</summary>
    public HostSummary Host(string service) => Hosts.Single(h => h.Service == service);
}

/// <summary>What happened to one downstream service and its circuit.</summary>
/// <param name="Service">The service (and client) name.</param>
/// <param name="Authority">The circuit's downstream, <c>http://127.0.0.1:port</c>.</param>
/// <param name="Client">The callers' counts.</param>
/// <param name="Server">The server's own counts.</param>
/// <param name="Transitions">Every state change of the circuit, in order.</param>
/// <param name="FinalState">The circuit's state at the end, or <see langword="null"/> if it was never called.</param>
/// <param name="LetThroughWhileOpen">Calls the breaker let through while the circuit was open: must be 0.</param>
/// <param name="ProbesOverLimit">Calls let through in a half-open window beyond <c>HalfOpenProbes</c>: must be 0.</param>
/// <param name="UnknownArrivals">Requests the server received that the breaker has no record of letting through: must be 0.</param>
/// <param name="Admitted">Calls the breaker let through (its own record).</param>
/// <param name="Mismatched">Calls on which the server's record and the caller's disagree: must be 0.</param>
/// <param name="AnsweredTooLate">Calls the server answered after the caller had given up (AttemptTimeout); usually 0.</param>
public sealed record HostSummary(
    string Service,
    string Authority,
    ClientCounts Client,
    ServerCounts Server,
    IReadOnlyList<TransitionRecord> Transitions,
    CircuitState? FinalState,
    int LetThroughWhileOpen,
    int ProbesOverLimit,
    int UnknownArrivals,
    int Admitted,
    int Mismatched,
    int AnsweredTooLate)
{
    /// <summary>Gets how many times the circuit made the change <paramref name="from"/> to <paramref name="to"/>.</summary>
    public int Count(CircuitState from, CircuitState to) => Transitions.Count(t => t.From == from && t.To == to);
}

/// <summary>One invariant of the drill and whether it held.</summary>
/// <param name="Name">What must hold.</param>
/// <param name="Passed">Whether it held.</param>
/// <param name="Detail">The numbers behind a failure.</param>
public sealed record DrillCheck(string Name, bool Passed, string Detail = "");
