using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.DependencyInjection;

namespace CircuitBreaker.Http.Benchmarks;

/// <summary>
/// The end-to-end throughput check (<c>-- throughput</c>): a real Kestrel server on 127.0.0.1 (a random port, one
/// endpoint answering 200 "ok"), and <c>--concurrency</c> callers hammering it for <c>--seconds</c> per client
/// through <c>IHttpClientFactory</c> clients, one bare and one with the breaker (its defaults). Both get the same
/// warm-up, then run in alternating rounds (A B, B A, ...) so that drift on the machine hits both alike. It reports
/// requests/s and the p50/p99 latency of each from the same run, the paired difference in requests/s with its
/// 95 % confidence interval, and the paired difference in each round's p99 with a sign test.
/// </summary>
internal static class ThroughputCheck
{
    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = Option(args, "--seconds", 10.0);
        var concurrency = (int)Option(args, "--concurrency", 32);
        var rounds = Math.Max(2, (int)Option(args, "--rounds", 10));
        var warmup = Option(args, "--warmup", 4.0);

        await using var server = await LoopbackServer.StartAsync();
        var address = server.Address;

        var services = new ServiceCollection();
        services.AddHttpClient("bare", c => c.BaseAddress = address);
        services.AddHttpClient("cb", c => c.BaseAddress = address).AddCircuitBreaker();
        await using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IHttpClientFactory>();
        Variant[] variants = [new("bare", factory.CreateClient("bare")), new("circuit breaker", factory.CreateClient("cb"))];

        Console.WriteLine(
            $"Throughput check: Kestrel on {address}, {concurrency} concurrent callers, {seconds:0.#} s per client in {rounds} alternating rounds " +
            $"after {warmup:0.#} s of warm-up each; {Environment.ProcessorCount} cores, .NET {Environment.Version}");
        // Warm-up in alternating halves too: on two cores the JIT's background compilation competes with the load,
        // so the code keeps getting faster for a few seconds.
        for (var w = 0; w < 2; w++)
        {
            foreach (var variant in variants)
            {
                await RoundAsync(variant.Client, TimeSpan.FromSeconds(warmup / 2), concurrency);
            }
        }

        var round = TimeSpan.FromSeconds(seconds / rounds);
        for (var r = 0; r < rounds; r++)
        {
            // A B, B A, A B, ...: each client goes first as often as the other.
            foreach (var variant in r % 2 == 0 ? variants : variants.Reverse())
            {
                variant.Rounds.Add(await RoundAsync(variant.Client, round, concurrency));
            }
        }

        Console.WriteLine();
        Console.WriteLine("| client | requests | errors | requests/s | p50 | p99 | requests/s per round |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---|");
        foreach (var v in variants)
        {
            Console.WriteLine(
                $"| {v.Name} | {v.Requests:N0} | {v.Errors:N0} | {v.RequestsPerSecond:N0} | {Ms(v.Percentile(0.50))} | {Ms(v.Percentile(0.99))} | " +
                $"{string.Join(" / ", v.Rounds.Select(x => x.RequestsPerSecond.ToString("N0", CultureInfo.InvariantCulture)))} |");
        }

        // Round i of the breaker ran right next to round i of the bare client (A B, B A, ...): the pairs' differences
        // cancel the machine's drift, and their spread is the noise. The difference is within noise when the 95 %
        // confidence interval of its mean includes zero and a sign test finds no side winning more often than chance
        // (one disturbed round moves the mean a lot, and the signs not at all).
        var (bare, breaker) = (variants[0], variants[1]);
        var pairs = bare.Rounds.Zip(breaker.Rounds, (a, b) => (b.RequestsPerSecond / a.RequestsPerSecond) - 1).ToArray();
        var mean = pairs.Average();
        var median = pairs.Order().ElementAt(pairs.Length / 2);
        var sd = Math.Sqrt(pairs.Sum(d => (d - mean) * (d - mean)) / (pairs.Length - 1));
        var margin = StudentT95(pairs.Length - 1) * sd / Math.Sqrt(pairs.Length);
        var slower = pairs.Count(d => d < 0);
        var signP = SignTestP(slower, pairs.Length);
        Console.WriteLine();
        Console.WriteLine(
            $"Breaker vs bare, {pairs.Length} paired rounds: requests/s {string.Join(", ", pairs.Select(Percent))}; " +
            $"mean {Percent(mean)} (95% CI {Percent(mean - margin)} to {Percent(mean + margin)}), median {Percent(median)}; " +
            $"the breaker slower in {slower} of {pairs.Length} (sign test p = {signP:0.000}).");
        Console.WriteLine(
            $"Latency, breaker vs bare: p50 {Ms(breaker.Percentile(0.50) - bare.Percentile(0.50), signed: true)}, " +
            $"p99 {Ms(breaker.Percentile(0.99) - bare.Percentile(0.99), signed: true)}.");

        // The target names p99 too: the rounds' p99s are paired as their requests/s are, and judged by the same sign test.
        var p99Pairs = bare.Rounds.Zip(breaker.Rounds, (a, b) => b.Percentile(0.99) - a.Percentile(0.99)).ToArray();
        var p99Higher = p99Pairs.Count(d => d > 0);
        var p99SignP = SignTestP(p99Higher, p99Pairs.Length);
        Console.WriteLine(
            $"p99 per round, breaker minus bare: {string.Join(", ", p99Pairs.Select(d => Ms(d, signed: true)))}; " +
            $"the breaker's higher in {p99Higher} of {p99Pairs.Length} (sign test p = {p99SignP:0.000}).");
        var throughputWithin = Math.Abs(mean) <= margin && signP >= 0.05;
        var p99Within = p99SignP >= 0.05;
        Console.WriteLine(throughputWithin && p99Within
            ? "Within noise: the confidence interval includes zero, and neither client is faster, nor has the higher p99, more often than chance."
            : "Outside noise: " + string.Join(
                "; ",
                new[]
                {
                    Math.Abs(mean) > margin ? "the requests/s confidence interval excludes zero" : null,
                    signP < 0.05 ? $"the breaker was slower in {slower} of {pairs.Length} rounds" : null,
                    p99Within ? null : $"the breaker's p99 was higher in {p99Higher} of {p99Pairs.Length} rounds",
                }.Where(r => r is not null)) + ".");

        var state = provider.GetRequiredService<ICircuitBreakerRegistry>().GetCircuits().Single().State;
        Console.WriteLine($"Circuit {address.Authority}: {state}");
        return variants.Sum(v => v.Errors) == 0 && state == CircuitState.Closed ? 0 : 1;
    }

    private static async Task<Round> RoundAsync(HttpClient client, TimeSpan duration, int concurrency)
    {
        var started = Stopwatch.GetTimestamp();
        var deadline = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var callers = Enumerable.Range(0, concurrency).Select(_ => Task.Run(() => CallAsync(client, deadline))).ToArray();
        var results = await Task.WhenAll(callers);
        var elapsed = Stopwatch.GetElapsedTime(started);
        return new Round([.. results.SelectMany(r => r.Latencies)], results.Sum(r => r.Errors), elapsed);
    }

    private static async Task<(List<long> Latencies, int Errors)> CallAsync(HttpClient client, long deadline)
    {
        var latencies = new List<long>(capacity: 16_384);
        var errors = 0;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            var start = Stopwatch.GetTimestamp();
            try
            {
                using var response = await client.GetAsync("/");
                errors += response.StatusCode == HttpStatusCode.OK ? 0 : 1;
            }
            catch (HttpRequestException)
            {
                errors++;
            }

            latencies.Add(Stopwatch.GetTimestamp() - start);
        }

        return (latencies, errors);
    }

    /// <summary>The value after <paramref name="name"/> in <paramref name="args"/>, or <paramref name="fallback"/>.</summary>
    internal static double Option(string[] args, string name, double fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>The two-sided p-value of a sign test: <paramref name="k"/> of <paramref name="n"/> pairs on one side.</summary>
    private static double SignTestP(int k, int n)
    {
        var tail = 0.0;
        for (var i = 0; i <= Math.Min(k, n - k); i++)
        {
            tail += Math.Exp(LogChoose(n, i) - (n * Math.Log(2)));
        }

        return Math.Min(1, 2 * tail);
    }

    private static double LogChoose(int n, int k)
    {
        var sum = 0.0;
        for (var i = 1; i <= k; i++)
        {
            sum += Math.Log(n - k + i) - Math.Log(i);
        }

        return sum;
    }

    private static string Percent(double value) => value.ToString("+0.0%;-0.0%", CultureInfo.InvariantCulture);

    /// <summary>The two-sided 95 % quantile of Student's t distribution.</summary>
    private static double StudentT95(int degreesOfFreedom) => degreesOfFreedom switch
    {
        1 => 12.706,
        2 => 4.303,
        3 => 3.182,
        4 => 2.776,
        5 => 2.571,
        6 => 2.447,
        7 => 2.365,
        8 => 2.306,
        9 => 2.262,
        10 => 2.228,
        < 20 => 2.1,
        < 40 => 2.03,
        _ => 1.96,
    };

    private static string Ms(double ticks, bool signed = false) =>
        (ticks * 1000.0 / Stopwatch.Frequency).ToString(signed ? "+0.000 ms;-0.000 ms;0.000 ms" : "0.000 ms", CultureInfo.InvariantCulture);

    private sealed record Round(long[] Latencies, int Errors, TimeSpan Elapsed)
    {
        private long[]? _sorted;

        public double RequestsPerSecond => Latencies.Length / Elapsed.TotalSeconds;

        public double Percentile(double p)
        {
            _sorted ??= [.. Latencies.Order()];
            return _sorted[Math.Min(_sorted.Length - 1, (int)Math.Ceiling(p * _sorted.Length) - 1)];
        }
    }

    private sealed class Variant(string name, HttpClient client)
    {
        private long[]? _sorted;

        public string Name => name;

        public HttpClient Client => client;

        public List<Round> Rounds { get; } = [];

        public long Requests => Rounds.Sum(r => r.Latencies.LongLength);

        public int Errors => Rounds.Sum(r => r.Errors);

        public double RequestsPerSecond => Requests / Rounds.Sum(r => r.Elapsed.TotalSeconds);

        public double Percentile(double p)
        {
            _sorted ??= [.. Rounds.SelectMany(r => r.Latencies).Order()];
            return _sorted[Math.Min(_sorted.Length - 1, (int)Math.Ceiling(p * _sorted.Length) - 1)];
        }
    }
}
