using BenchmarkDotNet.Running;
using CircuitBreaker.Http.Benchmarks;

// dotnet run -c Release --project tests/CircuitBreaker.Http.Benchmarks -- --filter '*' --job short   (BenchmarkDotNet)
// dotnet run -c Release --project tests/CircuitBreaker.Http.Benchmarks -- --filter '*' --job dry     (starts each once)
// dotnet run -c Release --project tests/CircuitBreaker.Http.Benchmarks -- throughput [--seconds 10] [--concurrency 32]
// dotnet run -c Release --project tests/CircuitBreaker.Http.Benchmarks -- profile [scenario|all] [count]  (bytes per request; callgrind workload)
// dotnet run -c Release --project tests/CircuitBreaker.Http.Benchmarks -- paired [closed|open|many-hosts|async|all]  (issue 6's ratios, variants interleaved)
if (args.Length > 0 && args[0] == "throughput")
{
    return await ThroughputCheck.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "profile")
{
    return await ProfileRun.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "paired")
{
    return await PairedRun.RunAsync(args[1..]);
}

var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args).ToList();
TargetReport.Print(summaries);
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
