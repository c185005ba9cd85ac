using CircuitBreaker.Http.Redis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>What every <c>AddRedisCoordination</c> overload registers.</summary>
internal static class RedisCoordinationRegistration
{
    public static void Add(IServiceCollection services, string? clientName, Action<RedisCoordinationOptions>? configure)
    {
        var clients = services.FirstOrDefault(d => d.ServiceType == typeof(CoordinatedClients))?.ImplementationInstance as CoordinatedClients;
        if (clients is null)
        {
            // First call: one coordinator (one Redis connection) for every coordinated client.
            clients = new CoordinatedClients();
            services.AddSingleton(clients);
            services.AddCircuitBreakerFleetControl();
            services.AddMetrics();
            services.TryAddSingleton(TimeProvider.System);
            services.AddSingleton<IConfigureOptions<RedisCoordinationOptions>>(sp => new RedisCoordinationConfiguration(
                sp.GetService<IConfiguration>()?.GetSection(RedisCoordinationDefaults.SectionName)));
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<RedisCoordinationOptions>, RedisCoordinationOptionsValidator>());
            services.AddOptions<RedisCoordinationOptions>().ValidateOnStart();
            services.AddSingleton<RedisFleetCoordinator>();
            services.AddSingleton<Hosting.IHostedService>(sp => sp.GetRequiredService<RedisFleetCoordinator>());
        }

        clients.Add(clientName);
        if (configure is not null)
        {
            services.Configure(configure);
        }
    }
}
