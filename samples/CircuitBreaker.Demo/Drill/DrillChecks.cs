using System.Globalization;
using CircuitBreaker.Demo.Downstream;
using CircuitBreaker.Http;

namespace CircuitBreaker.Demo.Drill;

/// <summary>Turns what the drill recorded into a <see cref="HostSummary"/> per service, and checks the drill's invariants.</summary>
public static class DrillChecks
{
    /// <summary>Sums up one service.</summary>
    /// <param name="service">The service's server, stopped so that its counts are final.</param>
    /// <param name="client">The callers' counts.</param>
    /// <param name="transitions">The circuit's state changes, in order.</param>
    /// <param name="admissions">The calls the breaker let through.</param>
    /// <param name="finalState">The circuit's state at the end.</param>
    /// <param name="halfOpenProbes">The client's <c>HalfOpenProbes</c>.</param>
    public static HostSummary Summarize(
        FlakyService service,
        ClientCounts client,
        IReadOnlyList<TransitionRecord> transitions,
        IReadOnlyCollection<Admission> admissions,
        CircuitState? finalState,
        int halfOpenProbes)
    {
        ArgumentNullException.ThrowIfNull(service);
        var authority = service.BaseAddress.GetLeftPart(UriPartial.Authority);
        var own = admissions.Where(a => a.Authority == authority).ToList();

        var (open, halfOpen) = Windows(transitions);
        var letThroughWhileOpen = own.Count(a => open.Any(w => a.At >= w.From && a.At < w.To));
        var probesOverLimit = halfOpen.Sum(w => Math.Max(0, own.Count(a => a.At >= w.From && a.At < w.To) - halfOpenProbes));

        // Every request the server received must carry the id of a call the breaker let through, once.
        var byId = own.ToDictionary(a => a.CallId);
        var calls = service.Calls;
        var unknown = calls.Keys.Count(id => !byId.ContainsKey(id)) + service.Counts.Untagged;

        // Call by call, the two sides must agree: an answer the caller got is one the server gave; an answer the server
        // gave reached the caller, unless the caller had given up (AttemptTimeout) by then.
        var (mismatched, tooLate) = (0, 0);
        foreach (var admission in own)
        {
            var server = calls.TryGetValue(admission.CallId, out var o) ? o : (ServerCallOutcome?)null;
            switch (admission.Outcome, server)
            {
                case (AdmissionOutcome.Response, ServerCallOutcome.Answered):
                case (AdmissionOutcome.GaveUp or AdmissionOutcome.ConnectionFailed or AdmissionOutcome.Other, null or ServerCallOutcome.Abandoned):
                    break;
                case (AdmissionOutcome.GaveUp, ServerCallOutcome.Answered):
                    tooLate++;
                    break;
                default:
                    mismatched++;
                    break;
            }
        }

        return new HostSummary(
            service.Name, authority, client, service.Counts, transitions, finalState, letThroughWhileOpen, probesOverLimit, unknown, own.Count, mismatched, tooLate);
    }

    /// <summary>Checks the invariants over every service.</summary>
    /// <param name="hosts">The services.</param>
    /// <param name="endedHealthy">Whether a service's last phase left it healthy, so that its circuit must close again.</param>
    /// <param name="interrupted">Whether Ctrl+C cut the drill short (calls in flight were cancelled, the end state is whatever it was).</param>
    public static IReadOnlyList<DrillCheck> Check(IReadOnlyList<HostSummary> hosts, Func<string, bool> endedHealthy, bool interrupted)
    {
        ArgumentNullException.ThrowIfNull(endedHealthy);
        List<DrillCheck> checks =
        [
            Each(hosts, "every request accounted for exactly once (sent = downstream + fallback + rejected + failed)",
                h => h.Client.Sent == h.Client.Accounted,
                h => $"sent {h.Client.Sent}, accounted for {h.Client.Accounted}"),
            Each(hosts, "the downstream's own count matches the callers', call by call",
                h => h.Mismatched == 0 && h.Server.Answered == h.Client.Downstream + h.AnsweredTooLate && h.Server.Received == h.Server.Answered + h.Server.Abandoned,
                h => $"server received {h.Server.Received}, answered {h.Server.Answered} ({h.AnsweredTooLate} after the caller gave up), abandoned {h.Server.Abandoned}; callers got {h.Client.Downstream} answers; {h.Mismatched} calls disagree"),
            Each(hosts, "every request the downstream received went through the breaker",
                h => h.UnknownArrivals == 0 && (h.Client.Cancelled > 0 || h.Admitted == h.Client.LetThrough),
                h => $"{h.UnknownArrivals} arrivals without a matching call; breaker let {h.Admitted} through, callers saw {h.Client.LetThrough} let through"),
            Each(hosts, "no call was let through while its circuit was open",
                h => h.LetThroughWhileOpen == 0 && h.ProbesOverLimit == 0,
                h => $"{h.LetThroughWhileOpen} let through while open, {h.ProbesOverLimit} probes over the limit"),
        ];

        if (!interrupted)
        {
            checks.Add(Each(hosts, "every circuit whose downstream recovered is closed at the end",
                h => !endedHealthy(h.Service) || h.FinalState is null or CircuitState.Closed,
                h => $"ends {h.FinalState}"));
        }

        return checks;
    }

    private static DrillCheck Each(IReadOnlyList<HostSummary> hosts, string name, Func<HostSummary, bool> holds, Func<HostSummary, string> detail)
    {
        var failed = hosts.Where(h => !holds(h)).Select(h => $"{h.Service}: {detail(h)}").ToList();
        return new DrillCheck(name, failed.Count == 0, string.Join("; ", failed));
    }

    /// <summary>
    /// The open windows, from each opening to the end of its break, and the half-open windows, from the end of a break to
    /// the next opening or closing. The registry's timestamps come from the same clock as the admissions'.
    /// </summary>
    private static (List<Window> Open, List<Window> HalfOpen) Windows(IReadOnlyList<TransitionRecord> transitions)
    {
        List<Window> open = [];
        List<Window> halfOpen = [];
        for (var i = 0; i < transitions.Count; i++)
        {
            var t = transitions[i];
            if (t.To != CircuitState.Open || t.BreakDuration is not { } breakDuration)
            {
                continue;
            }

            var retryAt = t.At + breakDuration;
            open.Add(new Window(t.At, retryAt));
            var next = transitions.Skip(i + 1).FirstOrDefault(n => n.To is CircuitState.Open or CircuitState.Closed or CircuitState.Isolated);
            halfOpen.Add(new Window(retryAt, next?.At ?? DateTimeOffset.MaxValue));
        }

        return (open, halfOpen);
    }

    /// <summary>Describes the changes as <c>Closed -> Open 2, Open -> HalfOpen 4, ...</c>.</summary>
    public static string Describe(IReadOnlyList<TransitionRecord> transitions)
    {
        ArgumentNullException.ThrowIfNull(transitions);
        return transitions.Count == 0
            ? "none"
            : string.Join(", ", transitions.GroupBy(t => t.Change).Select(g => string.Create(CultureInfo.InvariantCulture, $"{g.Key} {g.Count()}")));
    }

    private readonly record struct Window(DateTimeOffset From, DateTimeOffset To);
}
