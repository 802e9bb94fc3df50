"""The one door of the web layer into the knowledge base (web/service/facade.py). Only this package
imports kb.answer and kb.search (tests/test_layers.py)."""
from web.service.admin import AdminGate
from web.service.facade import KnowledgeService, ensure_knowledge_base, open_answerer
from web.service.generations import Generations
from web.service.jobs import BuildJobs, Job
from web.service.uploads import EXCLUDED, FAILED, UPLOADS, UploadFolder, safe_file_name

__all__ = ["EXCLUDED", "FAILED", "UPLOADS", "AdminGate", "BuildJobs", "Generations", "Job", "KnowledgeService",
           "UploadFolder", "ensure_knowledge_base", "open_answerer", "safe_file_name"]
