// Types shared by main.bicep and the modules: compile-time imports, nothing here is deployed.

@export()
@description('Someone who gets roles.')
type principal = {
  @description('Object id. For the app\'s identity it is known only once the identity exists.')
  principalId: string

  principalType: 'User' | 'ServicePrincipal'
}

@export()
@description('Names to string values: resource tags, app settings.')
type stringMap = { *: string }

@export()
@description('A built-in role given to someone.')
type roleGrant = {
  principal: principal

  @description('Built-in role definition GUID (infra/roles.json).')
  roleDefinitionId: string
}

@export()
@description('An image model Azure OpenAI deploys (and src/domain/image-models.ts knows).')
type imageModel = 'gpt-image-2' | 'gpt-image-1.5' | 'gpt-image-1' | 'gpt-image-1-mini'

@export()
@description('One more deployment the app spreads its load over (AZURE_OPENAI_EXTRA_BACKENDS): an existing one, or one this template creates.')
@discriminator('kind')
type openAiExtraBackend = existingOpenAiDeployment | newOpenAiDeployment

@export()
@sealed()
@description('A deployment that already exists in an Azure OpenAI account, in any resource group or subscription.')
type existingOpenAiDeployment = {
  kind: 'existing'

  @description('Resource id of its account: /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.CognitiveServices/accounts/<name>.')
  accountId: string

  @description('Its deployment name.')
  deployment: string

  model: imageModel

  @description('How the app names it in logs; default <endpoint host>/<deployment>.')
  name: string?

  @description('Lower goes first (provisioned before standard); default 1.')
  @minValue(1)
  @maxValue(1000)
  priority: int?

  @description('Share of the traffic among backends of one priority; default 1.')
  @minValue(1)
  @maxValue(1000)
  weight: int?

  @description('Its quota in images a minute, when known.')
  @minValue(1)
  imagesPerMinute: int?

  @description('Its quota in requests a minute, when known (instead of imagesPerMinute).')
  @minValue(1)
  requestsPerMinute: int?
}

@export()
@sealed()
@description('A deployment this template creates: in the Azure OpenAI account it creates, or in a new account in another region.')
type newOpenAiDeployment = {
  kind: 'new'

  model: imageModel

  @description('Region of a new account for it (Azure OpenAI quota is per region); omitted or the main account\'s region: the main account.')
  location: string?

  @description('Its deployment name; default the model name.')
  deployment: string?

  @description('Model version; default the one the model deploys at as Global Standard.')
  version: string?

  @description('Deployment SKU; default GlobalStandard.')
  sku: string?

  @description('Deployment capacity (quota units); default 1.')
  @minValue(1)
  capacity: int?

  @description('How the app names it in logs; default <endpoint host>/<deployment>.')
  name: string?

  @description('Lower goes first (provisioned before standard); default 1.')
  @minValue(1)
  @maxValue(1000)
  priority: int?

  @description('Share of the traffic among backends of one priority; default 1.')
  @minValue(1)
  @maxValue(1000)
  weight: int?

  @description('Its quota in images a minute, when known.')
  @minValue(1)
  imagesPerMinute: int?

  @description('Its quota in requests a minute, when known (instead of imagesPerMinute).')
  @minValue(1)
  requestsPerMinute: int?
}

@export()
@description('A model deployment in an Azure OpenAI account.')
type openAiDeployment = {
  name: string
  model: imageModel
  version: string
  sku: string
  capacity: int
}

@export()
@sealed()
@description('One entry of AZURE_OPENAI_BACKENDS, as src/config.ts reads it: a field without a value is left out, never null.')
type openAiBackendSetting = {
  name: string?
  @description('Omitted: AZURE_OPENAI_ENDPOINT.')
  endpoint: string?
  deployment: string
  model: imageModel
  auth: 'managed-identity'
  priority: int?
  weight: int?
  imagesPerMinute: int?
  requestsPerMinute: int?
}
