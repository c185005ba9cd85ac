using System.Diagnostics;
using System.Globalization;
using CircuitBreaker.Http;

namespace CircuitBreaker.Demo.Drill;

/// <summary>
/// The drill's load: <see cref="DrillSettings.CallersPerService"/> concurrent callers per service, each sending
/// <c>GET /{service}/{id}</c> at its own pace through the named client, and counting what became of every request.
/// </summary>
public sealed class Traffic(IHttpClientFactory clients, DrillSettings settings)
{
    /// <summary>The source of the drill's own spans, one per call, so that the breaker's spans have a parent.</summary>
    public const string ActivitySourceName = "CircuitBreaker.Demo";

    private static readonly ActivitySource Source = new(ActivitySourceName);

    /// <summary>
    /// Runs the callers of every service until <paramref name="stop"/> is cancelled; calls in flight then finish.
    /// <paramref name="abort"/> cancels calls in flight as well (Ctrl+C).
    /// </summary>
    public Task RunAsync(IReadOnlyDictionary<string, ClientTally> tallies, CancellationToken stop, CancellationToken abort)
    {
        ArgumentNullException.ThrowIfNull(tallies);
        var callers = new List<Task>();
        var seed = 0;
        foreach (var (service, tally) in tallies)
        {
            for (var i = 0; i < settings.CallersPerService; i++)
            {
                var random = new Random(++seed); // each caller its own repeatable sequence of ids and pauses
                callers.Add(Task.Run(() => CallerAsync(service, tally, random, stop, abort), CancellationToken.None));
            }
        }

        return Task.WhenAll(callers);
    }

    private async Task CallerAsync(string service, ClientTally tally, Random random, CancellationToken stop, CancellationToken abort)
    {
        var client = clients.CreateClient(service);
        var period = TimeSpan.FromSeconds(1 / settings.RequestsPerSecond);
        if (!await PauseAsync(period * random.NextDouble(), stop)) // the callers start spread out
        {
            return;
        }

        while (!stop.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            await CallAsync(client, service, NextId(random), tally, abort);

            // Each caller keeps its rate (with +-20% jitter) unless a call took longer than the period.
            var pause = (period * (0.8 + (0.4 * random.NextDouble()))) - Stopwatch.GetElapsedTime(started);
            if (!await PauseAsync(pause, stop))
            {
                return;
            }
        }
    }

    private int NextId(Random random) =>
        random.NextDouble() < settings.LongTailShare
            ? 1000 + random.Next(1_000_000)  // a rare id: the cache has no entry for it
            : 1 + random.Next(settings.HotIds);

    private static async Task CallAsync(HttpClient client, string service, int id, ClientTally tally, CancellationToken abort)
    {
        var path = $"{service}/{id.ToString(CultureInfo.InvariantCulture)}";
        using var activity = Source.StartActivity($"GET /{service}/{{id}}", ActivityKind.Client);
        tally.Sent();
        var outcome = await SendAsync(client, new Uri(path, UriKind.Relative), abort);
        tally.Record(outcome);
        activity?.SetTag("drill.outcome", outcome.ToString());
    }

    /// <summary>Sends one request and classifies what became of it; never throws.</summary>
    private static async Task<CallOutcome> SendAsync(HttpClient client, Uri uri, CancellationToken abort)
    {
        try
        {
            // The whole body is read, as a real caller would; that is also when the breaker's cache stores it.
            using var response = await client.GetAsync(uri, HttpCompletionOption.ResponseContentRead, abort);
            return CallOutcomes.Of(response);
        }
        catch (CircuitOpenException)
        {
            return CallOutcome.Rejected;
        }
        catch (TaskCanceledException ex) when (ex.InnerException is TimeoutException && !abort.IsCancellationRequested)
        {
            return CallOutcome.FailedTimeout;
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            return CallOutcome.Cancelled;
        }
        catch (HttpRequestException)
        {
            return CallOutcome.FailedConnection;
        }
#pragma warning disable CA1031 // Whatever happens to a call is counted, never lost: the drill accounts for every request.
        catch (Exception)
#pragma warning restore CA1031
        {
            return CallOutcome.FailedOther;
        }
    }

    /// <summary>Waits, and returns false when <paramref name="stop"/> ends the wait.</summary>
    private static async Task<bool> PauseAsync(TimeSpan pause, CancellationToken stop)
    {
        try
        {
            if (pause > TimeSpan.Zero)
            {
                await Task.Delay(pause, stop);
            }

            return !stop.IsCancellationRequested;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
