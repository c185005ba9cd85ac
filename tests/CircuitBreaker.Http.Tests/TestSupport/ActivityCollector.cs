using System.Collections.Concurrent;
using System.Diagnostics;

namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>
/// Listens to the circuit breaker's <see cref="ActivitySource"/> (and to any other source the test names) and
/// keeps the activities that stopped and that a predicate accepts. Listeners are process-wide and
/// tests run in parallel, so a test keeps only the activities of a host name or client name of its own.
/// </summary>
internal sealed class ActivityCollector : IDisposable
{
    private readonly ActivityListener _listener;
    private readonly ConcurrentQueue<Activity> _stopped = new();

    public ActivityCollector(Func<Activity, bool> keep, params string[] otherSources)
    {
        var sources = new HashSet<string>(otherSources, StringComparer.Ordinal) { CircuitBreakerTelemetry.ActivitySourceName };
        _listener = new ActivityListener
        {
            ShouldListenTo = source => sources.Contains(source.Name),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (keep(activity))
                {
                    _stopped.Enqueue(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <summary>Gets the kept activities, in the order they stopped.</summary>
    public IReadOnlyList<Activity> Stopped => [.. _stopped];

    /// <summary>Keeps the circuit breaker's activities whose <c>server.address</c> tag is <paramref name="host"/>.</summary>
    public static ActivityCollector ForHost(string host) =>
        new(a => a.Source.Name == CircuitBreakerTelemetry.ActivitySourceName && (a.GetTagItem("server.address") as string) == host);

    public void Dispose() => _listener.Dispose();
}
