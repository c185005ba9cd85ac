using System.Diagnostics;
using System.Globalization;

namespace CircuitBreaker.Http.Benchmarks;

/// <summary>
/// <c>-- paired [closed|open|many-hosts|async|all] [--rounds 1001] [--batch 2000] [--warmup 5]</c>: issue 6's ratios
/// measured with the variants of a target interleaved in one process. After <c>--warmup</c> seconds of interleaved
/// warm-up, each round sends <c>--batch</c> requests through every variant in turn (the order rotated from round to
/// round) and computes the target's ratio from that round alone; the verdict is the median over the rounds.
/// </summary>
/// <remarks>
/// BenchmarkDotNet measures one benchmark after the other, so on a shared host whose speed drifts over minutes the
/// ratio between two of them moves with the drift: on the 2-vCPU VM of docs/benchmarks.md the same code scored from
/// 0.06 to 0.18 in consecutive runs. Here every round sees the same few milliseconds of the host for all its variants,
/// and the median of the rounds' ratios discards the rounds a disturbance hit. The scenarios are
/// <c>-- profile</c>'s, built the same way. It complements the BenchmarkDotNet classes, which remain the reference.
/// </remarks>
internal static class PairedRun
{
    private static readonly Target[] Targets =
    [
        new("closed", "closed: (cb − bare) / (polly − bare)", ["bare", "cb", "polly"], t => (t[1] - t[0]) / (t[2] - t[0]), 0.10),
        new("open", "open + degraded / Polly's rejection", ["polly-open-throw", "cb-open-degraded"], t => t[1] / t[0], 0.05),
        new("open", "open + cache / Polly's rejection", ["polly-open-throw", "cb-open-cache"], t => t[1] / t[0], 0.05),
        new("open", "open + throw / Polly's rejection", ["polly-open-throw", "cb-open-throw"], t => t[1] / t[0], 1.00),
        // Not a target of the issue, which divides by Polly's throwing rejection: the degraded answer against Polly's
        // circuit answered by Polly's own fallback strategy with the same response, nothing thrown on either side.
        new("open", "(ref) open + degraded / Polly + fallback", ["polly-open-fallback", "cb-open-degraded"], t => t[1] / t[0], null),
        new("many-hosts", "100,000 hosts / 1 host", ["cb", "cb-many-hosts"], t => t[1] / t[0], 1.50),

        // Not a target of the issue, whose closed path is measured over a synchronous stub: what the breaker adds when
        // the call below completes asynchronously, as a network call does (its own completion and its registration on
        // the caller's token).
        new("async", "async closed: (cb − bare) / (polly − bare)", ["bare-async", "cb-async", "polly-async"], t => (t[1] - t[0]) / (t[2] - t[0]), null),
        new("async", "async closed: cb − bare, in ns", ["bare-async", "cb-async", "polly-async"], t => t[1] - t[0], null),
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        var which = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "all";
        var rounds = Math.Max(3, (int)ThroughputCheck.Option(args, "--rounds", 1_001));
        var batch = Math.Max(1, (int)ThroughputCheck.Option(args, "--batch", 2_000));
        var warmup = TimeSpan.FromSeconds(ThroughputCheck.Option(args, "--warmup", 5));
        var targets = Targets.Where(t => which == "all" || t.Group == which).ToArray();
        if (targets.Length == 0)
        {
            Console.Error.WriteLine($"Unknown target group '{which}'; one of: all, {string.Join(", ", Targets.Select(t => t.Group).Distinct())}");
            return 2;
        }

        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"Paired run: {rounds} rounds of {batch:N0} requests per variant, variants interleaved, after {warmup.TotalSeconds:0.#} s of warm-up; {Environment.ProcessorCount} cores, .NET {Environment.Version}"));
        foreach (var group in targets.GroupBy(t => t.Group))
        {
            await RunGroupAsync(group.ToArray(), rounds, batch, warmup);
        }

        return 0;
    }

    private static async Task RunGroupAsync(Target[] targets, int rounds, int batch, TimeSpan warmup)
    {
        var scenarios = targets.SelectMany(t => t.Scenarios).Distinct().ToArray();
        var providers = new List<IAsyncDisposable>();
        try
        {
            var senders = new Func<Task>[scenarios.Length];
            for (var i = 0; i < scenarios.Length; i++)
            {
                var services = await ProfileRun.BuildAsync(scenarios[i], server: null);
                providers.Add(services);
                senders[i] = await ProfileRun.SenderAsync(services, scenarios[i]);
            }

            // Warm-up, interleaved as the rounds are, and long enough for tiered compilation to reach its final code
            // (its call counting starts only after 100 ms without new methods to compile) in every variant.
            var warming = Stopwatch.StartNew();
            while (warming.Elapsed < warmup)
            {
                foreach (var send in senders)
                {
                    await TimeBatchAsync(send, batch);
                }
            }

            var times = new double[rounds][];
            for (var round = 0; round < rounds; round++)
            {
                times[round] = new double[scenarios.Length];
                for (var k = 0; k < scenarios.Length; k++)
                {
                    var i = (round + k) % scenarios.Length; // rotated, so that no variant always follows the same one
                    times[round][i] = await TimeBatchAsync(senders[i], batch);
                }
            }

            for (var i = 0; i < scenarios.Length; i++)
            {
                var perRequest = times.Select(t => t[i]).ToArray();
                Console.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"  {scenarios[i],-18} {Quantile(perRequest, 0.5),8:N0} ns/request (median of rounds; quartiles {Quantile(perRequest, 0.25):N0}–{Quantile(perRequest, 0.75):N0})"));
            }

            foreach (var target in targets)
            {
                var ratios = times.Select(t => target.Ratio(target.Scenarios.Select(s => t[Array.IndexOf(scenarios, s)]).ToArray())).ToArray();
                var median = Quantile(ratios, 0.5);
                var verdict = target.Limit is { } limit
                    ? string.Create(CultureInfo.InvariantCulture, $"met in {ratios.Count(r => r <= limit) * 100.0 / ratios.Length:0} % of rounds)  ≤ {limit:0.00}: {(median <= limit ? "met" : "missed")}")
                    : "for reference, not a target)";
                Console.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"  {target.Name,-42} median {median:0.000} (quartiles {Quantile(ratios, 0.25):0.000}–{Quantile(ratios, 0.75):0.000}; {verdict}"));
            }
        }
        finally
        {
            foreach (var provider in providers)
            {
                await provider.DisposeAsync();
            }
        }
    }

    /// <summary>Nanoseconds per request over one batch of awaited requests.</summary>
    private static async Task<double> TimeBatchAsync(Func<Task> send, int batch)
    {
        var started = Stopwatch.GetTimestamp();
        for (var n = 0; n < batch; n++)
        {
            await send();
        }

        return Stopwatch.GetElapsedTime(started).TotalNanoseconds / batch;
    }

    private static double Quantile(double[] values, double q)
    {
        var sorted = values.Order().ToArray();
        var position = q * (sorted.Length - 1);
        var below = (int)Math.Floor(position);
        var above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + ((position - below) * (sorted[above] - sorted[below]));
    }

    // Limit is null for a ratio printed for reference only.
    private sealed record Target(string Group, string Name, string[] Scenarios, Func<double[], double> Ratio, double? Limit);
}
