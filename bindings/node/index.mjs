// ESM entry point: the CommonJS package, re-exported.
import rewardkit from './index.js'

export const {
  QuestionPro,
  Splio,
  Sandbox,
  validateReward,
  validateRows,
  RewardkitError,
  ValidationError,
  APIError,
  BadRequestError,
  AuthenticationError,
  PermissionDeniedError,
  NotFoundError,
  RateLimitError,
  InternalServerError,
  APIConnectionError,
  APITimeoutError,
  OutcomeUnknownError,
} = rewardkit

export default rewardkit
