// Log Analytics + workspace-based Application Insights with local (instrumentation key) auth off:
// telemetry is accepted only from an Entra identity holding Monitoring Metrics Publisher.

import { principal, stringMap } from '../types.bicep'

param logAnalyticsName string
param applicationInsightsName string
param location string
param tags stringMap = {}

@description('Who gets the roles.')
param principals principal[] = []

@description('Built-in role definition GUIDs (infra/roles.json) each principal gets here.')
param roleDefinitionIds string[] = []

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

// The app writes one `ImageRequest {json}` line per request to its invocation's log (TELEMETRY=log,
// src/adapters/log-telemetry.ts); the host sends it to AppTraces. host.json keeps traces unsampled;
// counts and sums still weigh each line by ItemCount so they hold if sampling is turned back on.
var imageRequests = 'AppTraces\n| where Message startswith "ImageRequest "\n| extend r = parse_json(substring(Message, 13))\n'
var savedQueries = [
  {
    name: 'imagegen-spend-by-caller-per-day'
    displayName: 'Image spend by caller per day'
    query: '${imageRequests}| summarize cost = sum(todouble(r.cost) * ItemCount), images = sum(toint(r.images) * ItemCount), requests = sum(ItemCount) by caller = tostring(r.caller), day = bin(TimeGenerated, 1d)\n| order by day desc, cost desc'
  }
  {
    name: 'imagegen-429-rate'
    displayName: 'Image requests answered 429 (upstream throttling, budgets) per hour'
    query: '${imageRequests}| summarize requests = sum(ItemCount), throttled = sumif(ItemCount, tobool(r.throttled)), overBudget = sumif(ItemCount, tostring(r.outcome) == "BudgetExceeded") by bin(TimeGenerated, 1h)\n| extend percent429 = round(100.0 * (throttled + overBudget) / requests, 2)\n| render timechart'
  }
  {
    // Usage records the usage table did not take (it was unreachable), whole, to be written again.
    name: 'imagegen-unrecorded-usage'
    displayName: 'Image usage records not written to the usage table'
    query: 'AppTraces\n| where Message startswith "UsageNotRecorded "\n| extend record = parse_json(extract("^UsageNotRecorded ({.*}) \\\\(", 1, Message))\n| project TimeGenerated, requestId = tostring(record.requestId), caller = tostring(record.caller), cost = todouble(record.cost), record'
  }
  {
    name: 'imagegen-upstream-latency-p95'
    displayName: 'Image upstream latency p50/p95 by model per hour'
    query: '${imageRequests}| where isnotnull(r.upstreamLatencyInMs)\n| summarize p50 = percentile(todouble(r.upstreamLatencyInMs), 50), p95 = percentile(todouble(r.upstreamLatencyInMs), 95) by model = tostring(r.model), bin(TimeGenerated, 1h)\n| render timechart'
  }
]

resource queries 'Microsoft.OperationalInsights/workspaces/savedSearches@2020-08-01' = [
  for saved in savedQueries: {
    parent: logAnalytics
    name: saved.name
    properties: {
      category: 'imagegen'
      displayName: saved.displayName
      query: saved.query
      version: 2
    }
  }
]

// One assignment per (principal, role); max(…, 1) keeps the division defined for an empty list.
var roleCount = max(length(roleDefinitionIds), 1)

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for i in range(0, length(principals) * length(roleDefinitionIds)): {
    name: guid(applicationInsights.id, principals[i / roleCount].principalId, roleDefinitionIds[i % roleCount])
    scope: applicationInsights
    properties: {
      principalId: principals[i / roleCount].principalId
      principalType: principals[i / roleCount].principalType
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds[i % roleCount])
    }
  }
]

output applicationInsightsName string = applicationInsights.name
output connectionString string = applicationInsights.properties.ConnectionString
