// CircuitBreaker.Http demo: a named HttpClient with a circuit breaker calls a flaky in-process downstream
// through a scripted timeline (healthy -> failing -> still failing after the break -> recovered), printing
// every request, every circuit transition and per-phase counts. It exits by itself.
using CircuitBreaker.Demo;
using CircuitBreaker.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// 1. The downstream: a real Kestrel server on 127.0.0.1 with a random port.
await using var downstream = new FlakyDownstream();
var downstreamAddress = await downstream.StartAsync();

// 2. The client side: a Generic Host whose "users" client carries the breaker, configured from the
//    "CircuitBreaker" section of appsettings.json. The content root is the output folder, where
//    appsettings.json is copied, so the file is found whatever directory `dotnet run` is started from.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory,
});
var breakerSection = builder.Configuration.GetSection("CircuitBreaker");
if (!breakerSection.Exists())
{
    throw new InvalidOperationException($"No CircuitBreaker section in {AppContext.BaseDirectory}appsettings.json.");
}

builder.Services.AddHttpClient("users", c => c.BaseAddress = downstreamAddress).AddCircuitBreaker();

using var host = builder.Build();
await host.StartAsync(); // validates the CircuitBreaker options (ValidateOnStart)

var time = host.Services.GetRequiredService<TimeProvider>();
var started = time.GetUtcNow();
string Stamp(DateTimeOffset at) => $"[+{(at - started).TotalSeconds:0.0}s]";

// 3. Print every transition the registry reports. It may come from a timer thread (Open -> HalfOpen).
var registry = host.Services.GetRequiredService<ICircuitBreakerRegistry>();
registry.StateChanged += (_, e) =>
{
    var breakText = e.BreakDuration is { } b ? $" (break {b.TotalSeconds:0.###}s)" : "";
    Console.WriteLine($"{Stamp(e.Timestamp)} *** circuit {e.Key.ClientName} {e.Key.Authority}: {e.PreviousState} -> {e.State}{breakText}");
};

Console.WriteLine($"Downstream listening on {downstreamAddress}");
Console.WriteLine("Breaker options: " + string.Join(", ", breakerSection.GetChildren().Select(c => $"{c.Key}={c.Value}")));

// 4. The scripted timeline. Before a phase marked WaitForBreak, the demo sleeps until the break is over.
Phase[] phases =
[
    new("Healthy", Failing: false, Requests: 5, WaitForBreak: false, "calls reach the downstream; the circuit stays closed"),
    new("Downstream failing", Failing: true, Requests: 8, WaitForBreak: false, "3 counted 503s open the circuit, the rest fail fast"),
    new("Break over, still failing", Failing: true, Requests: 3, WaitForBreak: true, "one probe gets a 503 and re-opens the circuit"),
    new("Downstream recovered", Failing: false, Requests: 5, WaitForBreak: true, "one probe succeeds and closes the circuit"),
];

var client = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("users");
var retryAt = started;
int nextUserId = 1, totalSent = 0, totalReached = 0, totalFailedFast = 0, keptOffFailing = 0, sentWhileFailing = 0;

for (var p = 0; p < phases.Length; p++)
{
    var phase = phases[p];
    if (phase.WaitForBreak && retryAt > time.GetUtcNow())
    {
        var wait = retryAt - time.GetUtcNow() + TimeSpan.FromMilliseconds(200);
        Console.WriteLine($"{Stamp(time.GetUtcNow())} ... waiting {wait.TotalSeconds:0.0}s for the break to end (RetryAfter)");
        await Task.Delay(wait);
    }

    downstream.Failing = phase.Failing;
    Console.WriteLine();
    Console.WriteLine($"{Stamp(time.GetUtcNow())} Phase {p + 1}: {phase.Name} (downstream answers {(phase.Failing ? "503" : "200")})");
    Console.WriteLine($"         expected: {phase.Expected}");

    var reachedBefore = downstream.Requests;
    var failedFast = 0;
    for (var i = 0; i < phase.Requests; i++)
    {
        var path = $"/users/{nextUserId++}";
        string outcome;
        try
        {
            using var response = await client.GetAsync(new Uri(path, UriKind.Relative));
            outcome = $"{(int)response.StatusCode} {response.StatusCode}";
        }
        catch (CircuitOpenException ex)
        {
            failedFast++;
            retryAt = time.GetUtcNow() + (ex.RetryAfter ?? TimeSpan.Zero);
            outcome = $"failed fast, circuit {ex.State}, RetryAfter {ex.RetryAfter?.TotalSeconds:0.00}s";
            if (failedFast == 1)
            {
                outcome += $"{Environment.NewLine}           CircuitOpenException: {ex.Message}";
            }
        }
        catch (HttpRequestException ex)
        {
            outcome = $"error: {ex.Message}";
        }
        catch (TaskCanceledException ex) when (ex.InnerException is TimeoutException)
        {
            outcome = $"timed out: {ex.Message}";
        }

        Console.WriteLine($"{Stamp(time.GetUtcNow())}   GET {path} -> {outcome}");
        await Task.Delay(100);
    }

    var reached = downstream.Requests - reachedBefore;
    Console.WriteLine($"         phase {p + 1} counts: sent {phase.Requests}, reached downstream {reached}, failed fast {failedFast}");

    totalSent += phase.Requests;
    totalReached += reached;
    totalFailedFast += failedFast;
    if (phase.Failing)
    {
        sentWhileFailing += phase.Requests;
        keptOffFailing += failedFast;
    }
}

// 5. The end state, read back from the registry, and a one-line summary.
var circuit = registry.GetCircuits().Single();
Console.WriteLine();
Console.WriteLine($"Circuit {circuit.ClientName} {circuit.Authority} ends {circuit.State}, {circuit.ConsecutiveFailures} consecutive failures.");
Console.WriteLine(
    $"Summary: sent {totalSent}, reached downstream {totalReached}, failed fast {totalFailedFast}; "
    + $"the breaker kept {keptOffFailing} of {sentWhileFailing} requests off the failing downstream.");

await host.StopAsync();

// The demo checks its own story, so a behaviour change in the library shows up as a non-zero exit code.
if (circuit.State != CircuitState.Closed || keptOffFailing == 0)
{
    Console.Error.WriteLine("Unexpected: the circuit should have failed fast while the downstream failed, then closed again.");
    return 1;
}

return 0;

/// <summary>One step of the scripted timeline.</summary>
internal sealed record Phase(string Name, bool Failing, int Requests, bool WaitForBreak, string Expected);
