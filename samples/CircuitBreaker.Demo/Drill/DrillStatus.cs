using CircuitBreaker.Demo.Downstream;
using CircuitBreaker.Demo.Scenario;
using CircuitBreaker.Http;

namespace CircuitBreaker.Demo.Drill;

/// <summary>The drill at one moment, for the console.</summary>
/// <param name="Elapsed">Time since the start.</param>
/// <param name="Duration">The timeline's length.</param>
/// <param name="PhaseNumber">The current phase, from 1; 0 before the first.</param>
/// <param name="PhaseCount">The number of phases.</param>
/// <param name="PhaseName">The current phase's name, or what the drill is doing after the timeline.</param>
/// <param name="Services">Each service with its circuit and counts.</param>
public sealed record DrillStatus(TimeSpan Elapsed, TimeSpan Duration, int PhaseNumber, int PhaseCount, string PhaseName, IReadOnlyList<ServiceStatus> Services);

/// <summary>One service at one moment: what its server does, its circuit as the registry lists it, and the counts.</summary>
/// <param name="Service">The service (and client) name.</param>
/// <param name="Behaviour">What the server does now.</param>
/// <param name="State">The circuit's state, or <see langword="null"/> before its first call.</param>
/// <param name="ConsecutiveFailures">Consecutive failures counted while closed.</param>
/// <param name="RetryIn">Time until a probe may go, while open.</param>
/// <param name="Client">The callers' counts.</param>
/// <param name="Server">The server's own counts.</param>
public sealed record ServiceStatus(string Service, ServiceBehaviour Behaviour, CircuitState? State, int ConsecutiveFailures, TimeSpan? RetryIn, ClientCounts Client, ServerCounts Server);
